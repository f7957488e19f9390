/**
 * The README's TypeScript snippets, checked as a user would use them: each is
 * compiled against the built package (imported as "netbpf") with the compiler
 * settings the README names for `using`, and the self-contained ones are run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));

/** What the README tells users to set for `using` on Node 20 (the syntax is compiled down; Symbol.dispose exists from Node 20.4). */
const documentedSettings: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ["lib.es2023.d.ts", "lib.esnext.disposable.d.ts"],
  strict: true,
  skipLibCheck: true,
  types: ["node"],
  typeRoots: [join(root, "node_modules/@types")],
};

/** Values the fragments use without defining them (a program loaded earlier, a socket, …). */
const fragmentContext: [string, string][] = [
  ...["program", "xdpProgram", "socketFilter", "tracepointProgram", "rawProgram", "cgroupProgram"].map((name): [string, string] => [name, `declare const ${name}: import("netbpf").Program;`]),
  ["udpSocket", `declare const udpSocket: import("node:dgram").Socket;`],
  ["ringMap", `declare const ringMap: import("netbpf").BpfMap;`],
  ["lostMap", `declare const lostMap: import("netbpf").BpfMap;`],
  ["signal", "declare const signal: AbortSignal;"],
  ["packet", "declare const packet: Buffer;"],
  ["handle", "declare function handle(record: Buffer): void;"],
];

/** The declarations of the context names a snippet uses but does not define itself. */
function contextFor(block: string): string[] {
  return fragmentContext.filter(([name]) => new RegExp(`\\b${name}\\b`).test(block) && !new RegExp(`\\b(const|let|using)\\s+${name}\\b`).test(block)).map(([, declaration]) => declaration);
}

function snippets(): string[] {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  return [...readme.matchAll(/^```ts\n([^]*?)^```$/gm)].map((match) => match[1]!);
}

test("the README says which TypeScript settings `using` needs", () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  assert.match(readme, /"target": "ES2022"/);
  assert.match(readme, /"lib": \["ES2023", "ESNext\.Disposable"\]/);
  const packageJson = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  assert.equal(packageJson.engines.node, ">=20.4", "Symbol.dispose arrived in Node 20.4");
  assert.equal(typeof Symbol.dispose, "symbol");
});

test("the README's library snippets compile against the package, and the self-contained ones run", (t) => {
  const blocks = snippets();
  assert.ok(blocks.length >= 4, `found ${blocks.length} snippets`);
  const folder = mkdtempSync(join(tmpdir(), "nbh2-readme-"));
  try {
    writeFileSync(join(folder, "package.json"), JSON.stringify({ type: "module" }));
    mkdirSync(join(folder, "node_modules"));
    symlinkSync(root, join(folder, "node_modules", "netbpf"));
    const files = blocks.map((block, index) => {
      const file = join(folder, `snippet-${index + 1}.ts`);
      // A snippet without an import of its own is a fragment of a longer program.
      writeFileSync(file, `${block}\n${contextFor(block).join("\n")}\nexport {};\n`);
      return file;
    });
    const program = ts.createProgram(files, { ...documentedSettings, outDir: join(folder, "out"), rootDir: folder });
    const emitted = program.emit();
    const diagnostics = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics].map((d) =>
      `${d.file ? `${d.file.fileName.slice(folder.length + 1)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : ""}${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
    assert.deepEqual(diagnostics, []);
    // Self-contained: every name it uses is defined in it (no fragment context needed).
    // Only snippets that stay inside the process are run: anything that attaches to an interface, installs
    // persistent state or watches the machine (firewall, balancer, watchers) is compiled, never run here.
    const touchesTheMachine = /\b(Firewall|RateLimiter|Marker|LoadBalancer|StateStore|attach\w*|interfaces?|watchTraffic|watchTcp|Collection)\b|eth\d|veth/;
    const runnable = blocks.map((block, index) => ({ block, index })).filter(({ block }) => contextFor(block).length === 0 && !block.includes("prog.o") && !touchesTheMachine.test(block));
    assert.ok(runnable.length >= 2, "the counter and filter examples run");
    if (skipUnlessKernel(t, isRoot(), "running the snippets needs root (they load programs)")) return;
    for (const { block, index } of runnable) {
      const output = execFileSync(process.execPath, [join(folder, "out", `snippet-${index + 1}.js`)], { encoding: "utf8", cwd: folder });
      if (block.includes("console.log(counters.get(0)); // 1000n")) assert.equal(output, "1000n\n");
      if (block.includes("formatFilterProgram")) assert.match(output, /goto/);
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
