import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cacheDirectory, defaultCacheDirectory, fingerprint, readCacheFile, writeCacheFile } from "../../src/sys/private-cache.js";
import { skipUnlessRoot } from "../support/kernel.js";

function withFolder(run: (folder: string) => void): void {
  const folder = mkdtempSync(join(tmpdir(), "nbst-private-cache-"));
  try {
    run(folder);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

test("cache files: the folder is created 0700 and each file 0600, whatever the umask; what was written is read back", () => {
  withFolder((folder) => {
    const directory = join(folder, "a", "cache");
    const previous = process.umask(0);
    try {
      assert.equal(writeCacheFile(directory, "facts.json", "first"), true);
    } finally {
      process.umask(previous);
    }
    assert.equal(statSync(directory).mode & 0o777, 0o700);
    assert.equal(statSync(join(directory, "facts.json")).mode & 0o777, 0o600);
    assert.equal(readCacheFile(directory, "facts.json")?.toString(), "first");
    assert.equal(writeCacheFile(directory, "facts.json", Buffer.from("second")), true, "a file is replaced");
    assert.equal(readCacheFile(directory, "facts.json")?.toString(), "second");
    assert.deepEqual(readdirSync(directory), ["facts.json"], "no temporary file is left");
    assert.equal(readCacheFile(directory, "missing"), undefined);
    assert.throws(() => readCacheFile(directory, "../facts.json"), /not a plain file name/);
    assert.throws(() => writeCacheFile(directory, ".hidden", "x"), /not a plain file name/);
    // Not a folder: nothing written, nothing thrown.
    writeFileSync(join(folder, "plain"), "a file");
    assert.equal(writeCacheFile(join(folder, "plain", "cache"), "facts.json", "x"), false);
  });
});

test("cache files: one somebody else could have written is never read", (t) => {
  if (skipUnlessRoot(t, "to give files to another user")) return;
  withFolder((folder) => {
    const directory = join(folder, "cache");
    assert.equal(writeCacheFile(directory, "owned", "ours"), true);
    assert.equal(readCacheFile(directory, "owned")?.toString(), "ours", "the control: our own file is read");

    writeFileSync(join(directory, "foreign"), "theirs", { mode: 0o600 });
    chownSync(join(directory, "foreign"), 65534, 65534);
    assert.equal(readCacheFile(directory, "foreign"), undefined, "a file owned by another user");

    writeFileSync(join(directory, "group-writable"), "anyone in the group", { mode: 0o600 });
    chmodSync(join(directory, "group-writable"), 0o620);
    assert.equal(readCacheFile(directory, "group-writable"), undefined, "a group-writable file");

    symlinkSync(join(directory, "owned"), join(directory, "link"));
    assert.equal(readCacheFile(directory, "link"), undefined, "a symbolic link is not followed");

    mkdirSync(join(directory, "folder"));
    assert.equal(readCacheFile(directory, "folder"), undefined, "not a regular file");

    // A folder others can write to: nothing in it is read, nothing is written to it.
    chmodSync(directory, 0o777);
    assert.equal(readCacheFile(directory, "owned"), undefined, "in a world-writable folder");
    assert.equal(writeCacheFile(directory, "new", "x"), false);
    assert.equal(existsSync(join(directory, "new")), false);
    chmodSync(directory, 0o700);
    chownSync(directory, 65534, 65534);
    assert.equal(readCacheFile(directory, "owned"), undefined, "in a folder owned by another user");
    assert.equal(writeCacheFile(directory, "new", "x"), false);
  });
});

test("fingerprint: FNV-1a, 8 hex digits", () => {
  assert.equal(fingerprint(""), "811c9dc5");
  assert.equal(fingerprint("a"), "e40c292c");
  assert.notEqual(fingerprint("capture"), fingerprint("capturf"));
});

test("cacheDirectory: NETBPF_CACHE_DIR, else /run/netbpf/cache for root and the XDG cache folder for other users", () => {
  const saved = { cache: process.env.NETBPF_CACHE_DIR, xdg: process.env.XDG_CACHE_HOME };
  try {
    process.env.NETBPF_CACHE_DIR = "/somewhere/else";
    assert.equal(cacheDirectory(), "/somewhere/else");
    delete process.env.NETBPF_CACHE_DIR;
    process.env.XDG_CACHE_HOME = "/home/someone/.cache";
    assert.equal(cacheDirectory(), process.geteuid!() === 0 ? defaultCacheDirectory : "/home/someone/.cache/netbpf");
  } finally {
    for (const [name, value] of [["NETBPF_CACHE_DIR", saved.cache], ["XDG_CACHE_HOME", saved.xdg]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
});
