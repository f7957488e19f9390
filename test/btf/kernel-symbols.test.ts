import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gzipSync } from "node:zlib";
import { Btf } from "../../src/btf/btf.js";
import { encodeBtf } from "../../src/btf/btf-builder.js";
import type { BtfEncodableType } from "../../src/btf/btf-types.js";
import { encodeKconfigValue, findAttachBtfId, kernelSymbolAddress, kernelVersionCode, readKernelConfig } from "../../src/btf/kernel-symbols.js";

const int = (name: string, size: number, signed: boolean, extra: { bool?: boolean; char?: boolean } = {}): BtfEncodableType =>
  ({ kind: "int", name, size, signed, char: extra.char ?? false, bool: extra.bool ?? false, bitOffset: 0, bits: size * 8 });

/** Types of kconfig externs: 1 int, 2 bool, 3 char, 4 enum libbpf_tristate, 5 char[8], 6 unsigned long long, 7 const int. */
const local = Btf.parse(encodeBtf([
  int("int", 4, true),
  int("_Bool", 1, false, { bool: true }),
  int("char", 1, true, { char: true }),
  { kind: "enum", name: "libbpf_tristate", size: 4, signed: false, values: [{ name: "TRI_NO", value: 0 }, { name: "TRI_YES", value: 1 }, { name: "TRI_MODULE", value: 2 }] },
  { kind: "array", name: "", type: 3, indexType: 1, length: 8 },
  int("unsigned long long", 8, false),
  { kind: "const", name: "", type: 1 },
] as BtfEncodableType[]));

test("kconfig values are encoded into the extern's type by libbpf's rules", () => {
  const hex = (typeId: number, size: number, raw: string) => {
    const result = encodeKconfigValue(local, typeId, size, raw);
    return typeof result === "string" ? `error: ${result}` : result.toString("hex");
  };
  assert.equal(hex(2, 1, "y"), "01");
  assert.equal(hex(2, 1, "n"), "00");
  assert.match(hex(2, 1, "m"), /^error: value "m" is not a bool/);
  assert.equal(hex(4, 4, "m"), "02000000");
  assert.equal(hex(4, 4, "y"), "01000000");
  assert.match(hex(4, 4, "42"), /not a tristate/);
  assert.equal(hex(3, 1, "m"), "6d");
  assert.equal(hex(1, 4, "250"), "fa000000");
  assert.equal(hex(7, 4, "-2"), "feffffff", "qualifiers are skipped");
  assert.equal(hex(6, 8, "0x100000000"), "0000000001000000");
  assert.match(hex(1, 4, "4294967296"), /does not fit in 4 bytes/);
  assert.match(hex(1, 4, "y"), /not a number/);
  assert.equal(hex(5, 8, '"(none)"'), Buffer.from("(none)\0\0").toString("hex"));
  assert.equal(hex(5, 8, '"much too long"'), Buffer.from("much to\0").toString("hex"), "strings are cut to leave a NUL, as libbpf does");
  assert.match(hex(5, 8, "y"), /not a string/);
});

test("kernel version codes, config files and kallsyms are read as libbpf reads them", () => {
  assert.equal(kernelVersionCode("6.18.44-fc-v1272"), (6 << 16) + (18 << 8) + 44);
  assert.equal(kernelVersionCode("4.19.300"), (4 << 16) + (19 << 8) + 255, "the sublevel saturates at 255");
  assert.equal(kernelVersionCode("5.4"), (5 << 16) + (4 << 8));
  const directory = mkdtempSync(join(tmpdir(), "nbf2-kconfig-"));
  try {
    const text = "# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"text\"\nCONFIG_D=0x10\n";
    writeFileSync(join(directory, "config.gz"), gzipSync(text));
    writeFileSync(join(directory, "config"), text);
    for (const file of ["config.gz", "config"]) {
      const config = readKernelConfig([join(directory, "missing"), join(directory, file)])!;
      assert.equal(config.path, join(directory, file));
      assert.deepEqual([...config.values], [["CONFIG_A", "y"], ["CONFIG_C", '"text"'], ["CONFIG_D", "0x10"]]);
    }
    assert.equal(readKernelConfig([join(directory, "missing")]), undefined);
    writeFileSync(join(directory, "kallsyms"), "ffffffff81000000 T _stext\nffffffff81000010 t helper [module]\n");
    assert.equal(kernelSymbolAddress("_stext", join(directory, "kallsyms")), 0xffffffff81000000n);
    assert.equal(kernelSymbolAddress("helper", join(directory, "kallsyms")), 0xffffffff81000010n);
    assert.equal(kernelSymbolAddress("nope", join(directory, "kallsyms")), undefined);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("attach targets are found under libbpf's names for each program kind", () => {
  const kernel = Btf.parse(encodeBtf([
    { kind: "functionProto", name: "", returnType: 0, parameters: [] },
    { kind: "typedef", name: "btf_trace_inet_sock_set_state", type: 1 },
    { kind: "function", name: "tcp_v4_connect", type: 1, linkage: "global" },
    { kind: "function", name: "bpf_lsm_socket_connect", type: 1, linkage: "global" },
    { kind: "function", name: "bpf_iter_task", type: 1, linkage: "global" },
  ] as BtfEncodableType[]));
  assert.deepEqual(findAttachBtfId(kernel, "rawTracepoint", "inet_sock_set_state"), { id: 2, typeName: "btf_trace_inet_sock_set_state" });
  assert.deepEqual(findAttachBtfId(kernel, "function", "tcp_v4_connect"), { id: 3, typeName: "tcp_v4_connect" });
  assert.deepEqual(findAttachBtfId(kernel, "lsm", "socket_connect"), { id: 4, typeName: "bpf_lsm_socket_connect" });
  assert.deepEqual(findAttachBtfId(kernel, "iterator", "task"), { id: 5, typeName: "bpf_iter_task" });
  assert.equal(findAttachBtfId(kernel, "rawTracepoint", "tcp_v4_connect"), undefined);
});
