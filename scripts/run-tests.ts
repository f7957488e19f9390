/**
 * The test runner behind `npm test`: runs every `*.test.js` under dist/test
 * (and nothing else: support modules, source maps and fixtures are not tests),
 * two files at a time, then the leftovers check. A compiled test whose
 * `.test.ts` source is gone is stale output of an earlier build: the
 * runner refuses to start rather than run it (`npm run build` starts from an
 * empty dist/). Extra arguments narrow the run to files whose path contains
 * one of them: `npm test -- filter capture`.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const sourceRoot = join(root, "..");
const testRoot = join(root, "test");

function testFiles(folder: string): string[] {
  return readdirSync(folder).sort().flatMap((name) => {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) return name === "fixtures" ? [] : testFiles(path);
    return name.endsWith(".test.js") ? [path] : [];
  });
}

const all = existsSync(testRoot) ? testFiles(testRoot) : [];
const stale = all.filter((file) => !existsSync(join(sourceRoot, relative(root, file).replace(/\.js$/, ".ts"))));
if (stale.length > 0) {
  process.stderr.write(`stale compiled tests without a source (rebuild from a clean dist/: npm run build):\n${stale.map((file) => `  ${relative(root, file)}\n`).join("")}`);
  process.exit(1);
}
const only = process.argv.slice(2);
const files = all.filter((file) => only.length === 0 || only.some((part) => file.includes(part)));
if (files.length === 0) {
  process.stderr.write(`no test files under ${testRoot}${only.length ? ` matching ${only.join(", ")}` : ""}: build first (npm run build)\n`);
  process.exit(1);
}
const concurrency = process.env.NETBPF_TEST_CONCURRENCY ?? "2";
const run = spawnSync(process.execPath, ["--test", `--test-concurrency=${concurrency}`, ...files], { stdio: "inherit" });
if (run.status !== 0) process.exit(run.status ?? 1);
if (only.length === 0) {
  const leftovers = spawnSync(process.execPath, [join(root, "scripts", "check-leftovers.js")], { stdio: "inherit" });
  process.exit(leftovers.status ?? 1);
}
