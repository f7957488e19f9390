/**
 * Tests cannot skip behind CI's back: every skip goes through skipUnlessKernel
 * or skipUnlessTool (test/support/kernel.ts), which NETBPF_REQUIRE_KERNEL=1
 * turns into a failure. This scans every test source for the other ways to
 * skip — `t.skip(…)`, `test.skip`, a `{ skip: … }` option, and an early
 * `if (…) return;` in a test body whose condition is not one of those
 * helpers (or a function or value built on them) — and fails naming each.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const helpers = ["skipUnlessKernel", "skipUnlessTool"];
const testFunctions = new Set(["test", "it", "describe", "suite"]);
// A hook that returns early reports no pass: the tests after it still skip (or fail) on their own.
const hooks = new Set(["before", "after", "beforeEach", "afterEach"]);

function sourceFiles(folder: string, suffix: string): string[] {
  return readdirSync(folder).sort().flatMap((name) => {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) return name === "fixtures" ? [] : sourceFiles(path, suffix);
    return name.endsWith(suffix) ? [path] : [];
  });
}

function parse(path: string, text = readFileSync(path, "utf8")): ts.SourceFile {
  return ts.createSourceFile(path, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
}

function isFunction(node: ts.Node): node is ts.FunctionLikeDeclaration {
  return ts.isFunctionDeclaration(node) || ts.isFunctionExpression(node) || ts.isArrowFunction(node) || ts.isMethodDeclaration(node);
}

function calledName(call: ts.CallExpression): string | undefined {
  const callee = call.expression;
  if (ts.isIdentifier(callee)) return callee.text;
  if (ts.isPropertyAccessExpression(callee)) return callee.name.text;
  return undefined;
}

/** Names of the functions (declared anywhere in these files) that skip through a helper, directly or through another such function. */
function guardFunctions(files: ts.SourceFile[]): Set<string> {
  const bodies = new Map<string, ts.Node[]>();
  const record = (name: string, body: ts.Node | undefined) => {
    if (body) bodies.set(name, [...(bodies.get(name) ?? []), body]);
  };
  for (const file of files) {
    const visit = (node: ts.Node): void => {
      if ((ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node)) && node.name && ts.isIdentifier(node.name)) record(node.name.text, node.body);
      if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer && isFunction(node.initializer)) record(node.name.text, node.initializer.body);
      ts.forEachChild(node, visit);
    };
    visit(file);
  }
  const guards = new Set(helpers);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [name, nodes] of bodies) {
      if (guards.has(name)) continue;
      if (nodes.some((body) => callsAny(body, guards))) {
        guards.add(name);
        grew = true;
      }
    }
  }
  return guards;
}

function callsAny(node: ts.Node, names: Set<string>): boolean {
  let found = false;
  const visit = (child: ts.Node): void => {
    if (found) return;
    if (ts.isCallExpression(child) && names.has(calledName(child) ?? "")) found = true;
    else ts.forEachChild(child, visit);
  };
  visit(node);
  return found;
}

function mentionsAny(node: ts.Node, names: Set<string>): boolean {
  if (ts.isIdentifier(node) && names.has(node.text)) return true;
  return ts.forEachChild(node, (child) => mentionsAny(child, names) || undefined) ?? false;
}

/** Every way this test source skips other than through the helpers, as "file:line: what". */
export function skipOffenders(file: ts.SourceFile, guards: Set<string>): string[] {
  const offenders: string[] = [];
  const where = (node: ts.Node) => `${file.fileName}:${file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1}`;
  const checkBody = (body: ts.Node) => {
    // Values computed by a guard (`const s = await setup(t); if (!s) return;`) are guards too.
    const guardValues = new Set<string>();
    const visit = (node: ts.Node): void => {
      if (isFunction(node)) return;
      if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer && callsAny(node.initializer, guards)) guardValues.add(node.name.text);
      if (ts.isReturnStatement(node)) {
        let branch: ts.Node = node;
        if (ts.isBlock(branch.parent) && branch.parent.statements.at(-1) === branch) branch = branch.parent;
        const statement = branch.parent;
        if (ts.isIfStatement(statement) && statement.thenStatement === branch) {
          const guarded = callsAny(statement.expression, guards) || mentionsAny(statement.expression, guardValues);
          if (!guarded) offenders.push(`${where(node)}: early return on ${statement.expression.getText(file)}`);
        }
      }
      ts.forEachChild(node, visit);
    };
    ts.forEachChild(body, visit);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node)) {
      const name = calledName(node);
      if (ts.isPropertyAccessExpression(node.expression) && (name === "skip" || name === "todo")) offenders.push(`${where(node)}: ${node.expression.getText(file)}(…)`);
      if (name !== undefined && (testFunctions.has(name) || hooks.has(name))) {
        for (const argument of node.arguments) {
          if (ts.isObjectLiteralExpression(argument)) {
            for (const property of argument.properties) {
              if (property.name && ts.isIdentifier(property.name) && (property.name.text === "skip" || property.name.text === "todo")) offenders.push(`${where(property)}: { ${property.name.text}: … } option`);
            }
          }
          if (isFunction(argument) && argument.body && testFunctions.has(name)) checkBody(argument.body);
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return offenders;
}

test("the scanner finds each way to skip that bypasses the helper, and accepts the helper", () => {
  const source = `
    import { test, before } from "node:test";
    function needsRoot(t) { return skipUnlessKernel(t, isRoot(), "needs root"); }
    async function setup(t) { if (needsRoot(t)) return undefined; return {}; }
    test("a", (t) => { t.skip("no"); });
    test("b", { skip: true }, () => {});
    test("c", () => { if (!isRoot()) return; });
    test("c2", () => { if (!isRoot()) { console.log("skipping"); return; } });
    before(() => { if (!isRoot()) return; });
    test("d", (t) => { if (needsRoot(t)) return; [1].forEach((x) => { if (x) return; }); });
    test("e", async (t) => { const s = await setup(t); if (!s) return; });
    test("f", (t) => { if (skipUnlessTool(t, false, "clang")) return; });
  `;
  const file = parse("sample.test.ts", source);
  const offenders = skipOffenders(file, guardFunctions([file]));
  assert.deepEqual(offenders.map((line) => line.replace(/^sample\.test\.ts:\d+: /, "")), [
    "t.skip(…)",
    "{ skip: … } option",
    "early return on !isRoot()",
    "early return on !isRoot()",
  ]);
});

test("every test skips only through skipUnlessKernel or skipUnlessTool", () => {
  const files = sourceFiles(join(root, "test"), ".test.ts").map((path) => parse(path));
  const support = sourceFiles(join(root, "test", "support"), ".ts").map((path) => parse(path));
  assert.ok(files.length > 100, `found ${files.length} test files`);
  const offenders = files.flatMap((file) => skipOffenders(file, guardFunctions([file, ...support])).map((line) => relative(root, line)));
  assert.deepEqual(offenders, []);
});

test("without NETBPF_REQUIRE_KERNEL=1 a missing feature is a skip with its reason; with it, a failure naming the reason", () => {
  const script = `
    import { test } from "node:test";
    import { skipUnlessKernel } from ${JSON.stringify(new URL("./kernel.js", import.meta.url).href)};
    test("needs something", (t) => { if (skipUnlessKernel(t, false, "needs root for bpf(2)")) return; throw new Error("ran"); });
  `;
  // Without the parent's NODE_TEST_CONTEXT the child reports its own tests instead of feeding ours.
  const { NODE_TEST_CONTEXT: _, ...ownTestRun } = process.env;
  const run = (require: string) => spawnSync(process.execPath, ["--test-reporter=tap", "--input-type=module", "-e", script], { encoding: "utf8", env: { ...ownTestRun, NETBPF_REQUIRE_KERNEL: require } });
  const skipped = run("");
  assert.equal(skipped.status, 0, skipped.stdout + skipped.stderr);
  assert.match(skipped.stdout, /# SKIP needs root for bpf\(2\)/);
  const required = run("1");
  assert.notEqual(required.status, 0);
  assert.match(required.stdout, /NETBPF_REQUIRE_KERNEL=1\): needs root for bpf\(2\)/);
});
