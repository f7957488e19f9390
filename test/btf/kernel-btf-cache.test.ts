import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kernelBtfFacts } from "../../src/btf/kernel-btf-cache.js";
import { loadKernelBtf } from "../../src/btf/kernel-btf.js";
import { findRootType, fieldLocation } from "../../src/btf/btf-query.js";
import type { Btf } from "../../src/btf/btf.js";
import { tcpKernelOffsets } from "../../src/programs/tcp-state-events.js";
import { skipUnlessKernel } from "../support/kernel.js";

const haveBtf = existsSync("/sys/kernel/btf/vmlinux");

test("kernel BTF facts: computed once, then read from the cache file; a changed file or a failing check computes again", (t) => {
  if (skipUnlessKernel(t, haveBtf, "no /sys/kernel/btf/vmlinux")) return;
  const directory = mkdtempSync(join(tmpdir(), "netbpf-btf-cache-"));
  try {
    let computed = 0;
    const socketSock = (btf: Btf) => {
      computed++;
      return { sk: fieldLocation(btf, findRootType(btf, "struct socket"), "sk").byteOffset };
    };
    const first = kernelBtfFacts("socket-sk", socketSock, { directory });
    const second = kernelBtfFacts("socket-sk", socketSock, { directory });
    assert.equal(computed, 1, "the second call reads the file");
    assert.deepEqual(second, first);
    assert.equal(first.sk, fieldLocation(loadKernelBtf(), findRootType(loadKernelBtf(), "struct socket"), "sk").byteOffset);

    // Another boot (or kernel) wrote the file: its identity does not match.
    const file = join(directory, "socket-sk.json");
    const stored = JSON.parse(readFileSync(file, "utf8")) as { identity: string; facts: unknown };
    writeFileSync(file, JSON.stringify({ identity: `another boot ${stored.identity}`, facts: { sk: 12345 } }));
    assert.deepEqual(kernelBtfFacts("socket-sk", socketSock, { directory }), first);
    assert.equal(computed, 2);
    // Garbage, and facts the caller's check refuses, are computed again too.
    writeFileSync(file, "{not json");
    assert.deepEqual(kernelBtfFacts("socket-sk", socketSock, { directory }), first);
    writeFileSync(file, JSON.stringify({ ...stored, facts: { sk: -1 } }));
    assert.deepEqual(kernelBtfFacts("socket-sk", socketSock, { directory, check: (facts) => (facts as { sk: number }).sk >= 0 }), first);
    assert.equal(computed, 4);
    // The same name with a different function is a different answer.
    const other = kernelBtfFacts("socket-sk", (btf: Btf) => ({ sk: fieldLocation(btf, findRootType(btf, "struct socket"), "sk").byteOffset, other: true }), { directory });
    assert.equal(other.other, true);

    // No cache, or one that cannot be written: the facts are still right.
    assert.deepEqual(kernelBtfFacts("socket-sk", socketSock, { directory: false }), first);
    const readOnly = join(directory, "read-only");
    writeFileSync(readOnly, "a file, not a folder");
    assert.deepEqual(kernelBtfFacts("socket-sk", socketSock, { directory: join(readOnly, "cache") }), first);
    assert.throws(() => kernelBtfFacts("../escape", socketSock, { directory }), /invalid cache name/);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("netbpf tcp's offsets from the cache file equal those read from kernel BTF", (t) => {
  if (skipUnlessKernel(t, haveBtf, "no /sys/kernel/btf/vmlinux")) return;
  const directory = mkdtempSync(join(tmpdir(), "netbpf-btf-cache-"));
  try {
    kernelBtfFacts("tcp-offsets", tcpKernelOffsets, { directory });
    assert.deepEqual(kernelBtfFacts("tcp-offsets", tcpKernelOffsets, { directory }), tcpKernelOffsets(loadKernelBtf()));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
