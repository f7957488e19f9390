import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { codeCacheFilesKept, codeCacheName, loadBundle } from "../../src/cli/bundle-loader.js";
import { cliPath } from "../support/cli.js";
import { skipUnlessRoot } from "../support/kernel.js";

/** A bundle with some functions to compile: `answer()` returns `word`. */
function bundleText(word: string): string {
  const helpers = Array.from({ length: 50 }, (_, i) => `function helper${i}(x) { return x * ${i} + ${i}; }`).join("\n");
  return `"use strict";\n${helpers}\nlet total = 0; for (let i = 0; i < 50; i++) total += eval("helper" + i)(i);\nexports.total = total;\nexports.answer = () => ${JSON.stringify(word)};\nexports.file = __filename;\n`;
}

function withFolder(run: (folder: string) => void): void {
  const folder = mkdtempSync(join(tmpdir(), "nbst-bundle-loader-"));
  try {
    run(folder);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

test("bundle loader: the code cache is written after a run and used by the next; a changed bundle never runs the old code", () => {
  withFolder((folder) => {
    const file = join(folder, "netbpf-example.cjs");
    const directory = join(folder, "cache");
    writeFileSync(file, bundleText("one"));

    const first = loadBundle(file, { directory });
    assert.equal(first.cache, "absent");
    assert.equal((first.exports.answer as () => string)(), "one");
    assert.equal(first.exports.file, file, "the bundle sees its own path as __filename");
    assert.equal(first.saveCache(), true);
    assert.equal(first.saveCache(), false, "written once");
    const cacheFile = join(directory, codeCacheName(file));
    assert.equal(statSync(cacheFile).mode & 0o777, 0o600);
    assert.equal(statSync(directory).mode & 0o777, 0o700);

    const second = loadBundle(file, { directory });
    assert.equal(second.cache, "used");
    assert.equal((second.exports.answer as () => string)(), "one");
    assert.equal(second.saveCache(), false, "a cache that was used is not written again");

    // Rewritten with text of the same length (V8 alone would take the old code): the cache is stale.
    writeFileSync(file, bundleText("two"));
    const third = loadBundle(file, { directory });
    assert.equal(third.cache, "stale");
    assert.equal((third.exports.answer as () => string)(), "two", "the new text runs");
    assert.equal(third.saveCache(), true, "and replaces the stale cache");
    const fourth = loadBundle(file, { directory });
    assert.equal(fourth.cache, "used");
    assert.equal((fourth.exports.answer as () => string)(), "two");
    assert.equal(fourth.exports.total, first.exports.total);

    // A cache file cut short, or made by another Node: not used.
    writeFileSync(cacheFile, "netbpf-code-cache 1 v0.0.0 x64\n3\nabc", { mode: 0o600 });
    assert.equal(loadBundle(file, { directory }).cache, "stale");

    const off = loadBundle(file, { directory: false });
    assert.equal(off.cache, "off");
    assert.equal(off.saveCache(), false);
  });
});

test("bundle loader: a cache file owned by another user is not used", (t) => {
  if (skipUnlessRoot(t, "to give a file to another user")) return;
  withFolder((folder) => {
    const file = join(folder, "netbpf-example.cjs");
    const directory = join(folder, "cache");
    writeFileSync(file, bundleText("one"));
    loadBundle(file, { directory }).saveCache();
    assert.equal(loadBundle(file, { directory }).cache, "used", "the control: our own cache is used");
    chownSync(join(directory, codeCacheName(file)), 65534, 65534);
    assert.equal(loadBundle(file, { directory }).cache, "absent", "another user's file is not read");
  });
});

test("netbpf writes its code cache in NETBPF_CACHE_DIR and uses it on the next start", () => {
  withFolder((folder) => {
    const directory = join(folder, "cache");
    const environment = { ...process.env, NETBPF_CACHE_DIR: directory };
    const first = spawnSync(process.execPath, [cliPath, "--version"], { encoding: "utf8", env: environment });
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.stdout.trim(), "0.1.0");
    const files = readdirSync(directory);
    assert.equal(files.length, 1, `one cache file: ${files.join(", ")}`);
    assert.match(files[0]!, /^code-[0-9a-f]{8}-netbpf-listing\.cjs\.v8$/);
    assert.equal(statSync(join(directory, files[0]!)).mode & 0o777, 0o600);
    const written = statSync(join(directory, files[0]!)).mtimeMs;
    const second = spawnSync(process.execPath, [cliPath, "--help"], { encoding: "utf8", env: environment });
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /^Usage: netbpf/);
    assert.equal(statSync(join(directory, files[0]!)).mtimeMs, written, "the cache was used, not written again");
    assert.equal(existsSync(join(directory, `${files[0]}.tmp`)), false);
  });
});

test("bundle loader: a new cache file removes the ones used longest ago beyond the limit; other files stay", () => {
  withFolder((folder) => {
    const directory = join(folder, "cache");
    mkdirSync(directory, { mode: 0o700 });
    const old = (i: number) => join(directory, `code-0000${String(i).padStart(4, "0")}-netbpf-old.cjs.v8`);
    const now = Date.now() / 1000;
    for (let i = 0; i < codeCacheFilesKept + 5; i++) {
      writeFileSync(old(i), "x", { mode: 0o600 });
      utimesSync(old(i), now - 3600 - i, now - 3600 - i); // file i was used i seconds before file 0
    }
    writeFileSync(join(directory, "btf-offsets"), "kept", { mode: 0o600 });
    const file = join(folder, "netbpf-example.cjs");
    writeFileSync(file, bundleText("one"));
    const loaded = loadBundle(file, { directory });
    assert.equal(loaded.cache, "absent");
    assert.equal(loaded.saveCache(), true);
    const left = readdirSync(directory);
    assert.ok(left.includes(codeCacheName(file)), "the new file stays");
    assert.ok(left.includes("btf-offsets"), "files of other kinds stay");
    assert.equal(left.filter((name) => name.startsWith("code-")).length, codeCacheFilesKept);
    for (let i = 0; i < codeCacheFilesKept - 1; i++) assert.ok(existsSync(old(i)), `recently used file ${i} stays`);
    for (let i = codeCacheFilesKept - 1; i < codeCacheFilesKept + 5; i++) assert.ok(!existsSync(old(i)), `file ${i}, used longest ago, is gone`);
  });
});
