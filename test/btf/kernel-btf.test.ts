import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { clearKernelBtfCache, kernelBtfPath, loadKernelBtf, loadModuleBtf } from "../../src/btf/kernel-btf.js";
import { NetbpfError } from "../../src/sys/errors.js";
import { skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";
import { BtfBuilder } from "../../src/btf/btf-builder.js";
import { bpftoolAvailable, bpftoolRawDump } from "./support/bpftool-raw.js";
import { assertMatchesRaw } from "./support/compare-raw.js";

const haveKernelBtf = existsSync(kernelBtfPath);

test("loadKernelBtf parses /sys/kernel/btf/vmlinux once and caches it", (t) => {
  if (skipUnlessKernel(t, haveKernelBtf, "no /sys/kernel/btf/vmlinux")) return;
  clearKernelBtfCache();
  const first = loadKernelBtf();
  assert.equal(loadKernelBtf(), first);
  assert.ok(first.typeCount > 1000);
  clearKernelBtfCache();
  assert.notEqual(loadKernelBtf(), first);
});

test("every vmlinux type decodes as bpftool prints it", (t) => {
  if (skipUnlessKernel(t, haveKernelBtf && bpftoolAvailable(), "needs /sys/kernel/btf/vmlinux and bpftool")) return;
  const btf = loadKernelBtf();
  const raw = bpftoolRawDump(kernelBtfPath);
  assert.equal(btf.typeCount - 1, raw.size);
  // loadKernelBtf skips the up-front check; the full check passes too
  Btf.parse(btf.bytes).validate();
  const seenKinds = new Set<string>();
  for (const type of raw.values()) {
    assertMatchesRaw(btf, type);
    seenKinds.add(type.kind);
  }
  for (const kind of ["INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM", "FUNC", "FUNC_PROTO", "TYPEDEF", "CONST", "VAR", "DATASEC"]) {
    assert.ok(seenKinds.has(kind), `vmlinux has ${kind} types`);
  }
  // name lookups agree with bpftool for every named struct
  for (const type of raw.values()) {
    if (type.kind === "STRUCT" && type.name !== "") assert.ok(btf.findByName(type.name, "struct").includes(type.id), type.name);
  }
});

test("module BTF: split over vmlinux as bpftool reads it; bad names and missing modules are errors", (t) => {
  if (skipUnlessKernel(t, haveKernelBtf, "no /sys/kernel/btf/vmlinux")) return;
  assert.throws(() => loadModuleBtf("../etc/passwd"), NetbpfError);
  assert.throws(() => loadModuleBtf("netbpf_no_such_module"), (error: unknown) => error instanceof NetbpfError && /ENOENT/.test(error.message));
});

test("split BTF over vmlinux decodes as bpftool prints it (a loaded module's, else one built here)", (t) => {
  if (skipUnlessKernel(t, haveKernelBtf, "no /sys/kernel/btf/vmlinux")) return;
  if (skipUnlessTool(t, bpftoolAvailable(), "bpftool is not installed")) return;
  // This machine's kernel may have no modules: then split BTF built on vmlinux stands in for one.
  const module = readdirSync("/sys/kernel/btf").find((name) => name !== "vmlinux");
  if (module === undefined) {
    const base = loadKernelBtf();
    const builder = new BtfBuilder({ base });
    const int = base.findByName("int", "int")[0]!;
    const skbuff = base.findByName("sk_buff", "struct")[0]!;
    const pointer = builder.add({ kind: "pointer", name: "", type: skbuff });
    builder.add({ kind: "struct", name: "nbh2_split", size: 16, kindFlag: false, members: [{ name: "count", type: int, bitOffset: 0, bitfieldSize: 0 }, { name: "skb", type: pointer, bitOffset: 64, bitfieldSize: 0 }] });
    builder.add({ kind: "typedef", name: "nbh2_split_t", type: builder.nextTypeId - 1 });
    const folder = mkdtempSync(join(tmpdir(), "nbh2-split-btf-"));
    try {
      const path = join(folder, "split.btf");
      writeFileSync(path, builder.encode());
      const btf = Btf.parse(readFileSync(path), { base });
      assert.equal(btf.firstTypeId, base.typeCount);
      const raw = bpftoolRawDump(path, kernelBtfPath);
      const own = [...raw.values()].filter((type) => type.id >= btf.firstTypeId);
      assert.equal(own.length, 3);
      for (const type of own) assertMatchesRaw(btf, type);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  } else {
    const btf = loadModuleBtf(module);
    assert.equal(btf.firstTypeId, loadKernelBtf().typeCount);
    for (const type of bpftoolRawDump(`/sys/kernel/btf/${module}`, kernelBtfPath).values()) {
      if (type.id >= btf.firstTypeId) assertMatchesRaw(btf, type);
    }
  }
});

test("missing kernel BTF file gives a clear error", () => {
  assert.throws(() => loadKernelBtf("/nonexistent/netbpf/vmlinux"), (error: unknown) => error instanceof NetbpfError && /cannot read \/nonexistent\/netbpf\/vmlinux: ENOENT/.test(error.message) && /CONFIG_DEBUG_INFO_BTF/.test(error.message));
});
