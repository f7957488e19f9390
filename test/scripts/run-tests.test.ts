/**
 * The runner behind `npm test` runs compiled `*.test.js` files only — not
 * support modules, source maps or fixtures — and refuses stale compiled tests
 * whose source is gone. Checked on a small tree laid out like the checkout.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const runner = fileURLToPath(new URL("../../scripts/run-tests.js", import.meta.url));

function file(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

/** A test module that records that it ran. */
function recorder(name: string): string {
  return `import { test } from "node:test"; test(${JSON.stringify(name)}, () => { console.log("ran " + ${JSON.stringify(name)}); });\n`;
}

test("runs every compiled *.test.js with a source and nothing else; stale compiled tests stop the run", (t) => {
  const checkout = mkdtempSync(join(tmpdir(), "nbhv-runner-"));
  t.after(() => rmSync(checkout, { recursive: true, force: true }));
  const dist = join(checkout, "dist");
  mkdirSync(join(dist, "scripts"), { recursive: true });
  copyFileSync(runner, join(dist, "scripts", "run-tests.js"));
  file(join(dist, "package.json"), '{ "type": "module" }\n');
  for (const name of ["a.test", "deep/b.test"]) {
    file(join(checkout, "test", `${name}.ts`), "");
    file(join(dist, "test", `${name}.js`), recorder(name));
  }
  file(join(checkout, "test", "support", "helper.ts"), "");
  file(join(dist, "test", "support", "helper.js"), recorder("support module"));
  file(join(dist, "test", "a.test.js.map"), recorder("source map"));
  file(join(dist, "test", "c.test.mjs"), recorder("other extension"));
  file(join(dist, "test", "fixtures", "f.test.js"), recorder("fixture"));
  file(join(checkout, "test", "fixtures", "f.test.ts"), "");

  // Without the parent's NODE_TEST_CONTEXT the child reports its own tests instead of feeding ours.
  const { NODE_TEST_CONTEXT: _, ...ownTestRun } = process.env;
  const run = (...filter: string[]) => spawnSync(process.execPath, [join(dist, "scripts", "run-tests.js"), ...filter], { encoding: "utf8", env: ownTestRun });
  // A filter keeps the leftovers check (a script of the real checkout) out of the run.
  const clean = run("test");
  assert.equal(clean.status, 0, clean.stdout + clean.stderr);
  assert.deepEqual([...clean.stdout.matchAll(/^\W*ran (\S+)$/gm)].map((match) => match[1]).sort(), ["a.test", "deep/b.test"]);

  file(join(dist, "test", "gone.test.js"), recorder("stale"));
  const stale = run("test");
  assert.equal(stale.status, 1);
  assert.match(stale.stderr, /stale compiled tests without a source[^]*test\/gone\.test\.js/);
  assert.doesNotMatch(stale.stdout, /ran /);
  unlinkSync(join(dist, "test", "gone.test.js"));

  const none = run("nothing-matches");
  assert.equal(none.status, 1);
  assert.match(none.stderr, /no test files .* matching nothing-matches/);
});
