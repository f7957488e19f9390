/**
 * The package as people install it: its subpath exports, the pure layers
 * loading without the FFI, and what `npm pack` puts in the tarball.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const pureLayers = ["pcap", "filter", "btf", "asm", "elf"];

// Any import of koffi fails in the child: a pure layer must not reach it. src/sys/koffi.ts, the one
// module that loads koffi (through require, which this hook does not see), is blocked by name too.
const blockKoffi = `data:text/javascript,${encodeURIComponent(`
import { register } from "node:module";
register("data:text/javascript," + encodeURIComponent('export async function resolve(specifier, context, next) { if (specifier === "koffi" || specifier.endsWith("/koffi.js")) throw new Error("koffi is blocked"); return next(specifier, context); }'));
`)}`;

test("the pure layers load as netbpf/<layer> without the FFI", () => {
  const packageJson = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  for (const layer of pureLayers) {
    const entry = packageJson.exports[`./${layer}`];
    assert.ok(entry, `package.json exports ./${layer}`);
    assert.ok(existsSync(join(root, entry.default)), entry.default);
    const script = `const m = await import(${JSON.stringify(join(root, entry.default))}); console.log(Object.keys(m).length);`;
    const child = spawnSync(process.execPath, ["--import", blockKoffi, "--input-type=module", "-e", script], { encoding: "utf8" });
    assert.equal(child.status, 0, `${layer}: ${child.stderr}`);
    assert.ok(Number(child.stdout) > 3, `${layer} exports something`);
  }
  // The check can fail: the root entry does load koffi.
  const whole = spawnSync(process.execPath, ["--import", blockKoffi, "--input-type=module", "-e", `await import(${JSON.stringify(join(root, packageJson.exports["."].default))});`], { encoding: "utf8" });
  assert.notEqual(whole.status, 0);
  assert.match(whole.stderr, /koffi is blocked/);
});

test("npm pack ships the built code, the docs the README links to and resolvable source maps", () => {
  const [report] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" }));
  const files = new Set<string>(report.files.map((f: { path: string }) => f.path));
  for (const required of ["package.json", "README.md", "LICENSE", "dist/src/index.js", "dist/src/index.d.ts", "dist/src/cli/netbpf.cjs", "dist/src/cli/netbpf.js", ...pureLayers.map((l) => `dist/src/${l}/index.js`)]) {
    assert.ok(files.has(required), `${required} is packed`);
  }
  assert.deepEqual([...files].filter((f) => f.startsWith("dist/test/") || f.startsWith("dist/bench/") || f.startsWith("src/")), []);
  // Every relative link in the README reaches a packed file.
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const links = [...readme.matchAll(/\]\((?!https?:|#)([^)#]+)/g)].map((m) => m[1]!);
  assert.ok(links.length > 3);
  for (const link of links) assert.ok(files.has(link) || [...files].some((f) => f.startsWith(`${link.replace(/\/$/, "")}/`)), `README links ${link}, which is not packed`);
  // Source maps carry their sources, since src/ is not packed.
  const map = JSON.parse(readFileSync(join(root, "dist/src/filter/compile-filter.js.map"), "utf8"));
  assert.equal(map.sourcesContent?.length, map.sources.length);
  assert.match(map.sourcesContent[0], /export function compileFilter/);
  const scripts = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).scripts;
  assert.match(scripts.prepack, /npm run build/, "a build before publishing");
});

test("one module loads libc through the FFI: src/sys/libc.ts", () => {
  const sources = (folder: string): string[] =>
    readdirSync(folder, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? sources(join(folder, entry.name)) : entry.name.endsWith(".ts") ? [join(folder, entry.name)] : []));
  const text = new Map(sources(join(root, "src")).map((file) => [file.slice(root.length), readFileSync(file, "utf8")]));
  const loaders = [...text].filter(([, source]) => /koffi\.load\(/.test(source)).map(([file]) => file);
  // The FFI module itself is loaded (from its native binary) by src/sys/koffi.ts alone.
  const ffi = [...text].filter(([, source]) => /^import (?!type)[^;]*from "koffi"|require\("koffi"\)/m.test(source)).map(([file]) => file);
  assert.deepEqual(ffi, ["src/sys/koffi.ts"]);
  assert.deepEqual(loaders, ["src/sys/libc.ts"]);
});
