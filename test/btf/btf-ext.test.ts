import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { parseBtfExt } from "../../src/btf/btf-ext.js";
import { BtfFormatError } from "../../src/btf/btf-format-error.js";
import { fixtureDirectory } from "./support/bpftool-raw.js";

const btf = Btf.parse(readFileSync(fixtureDirectory + "core-sample.btf"));
const bytes = readFileSync(fixtureDirectory + "core-sample.btf.ext");
const sourceLines = readFileSync(fixtureDirectory + "core-sample.c", "utf8").split("\n");

test("func_info points at the FUNC of each program and subprogram", () => {
  const ext = parseBtfExt(bytes, btf);
  assert.equal(ext.functionInfoRecordSize, 8);
  const functions = new Map([...ext.functionInfo].map(([section, records]) => [section, records.map((record) => btf.formatC(record.typeId))]));
  assert.deepEqual(functions.get("socket"), [btf.formatC(btf.findType("sample_program", "function"))]);
  assert.deepEqual(functions.get(".text"), [btf.formatC(btf.findType("helper_function", "function"))]);
  for (const records of ext.functionInfo.values()) for (const record of records) assert.equal(btf.kindOf(record.typeId), "function");
});

test("line_info records carry the source text of the line they name", () => {
  const ext = parseBtfExt(bytes, btf);
  assert.equal(ext.lineInfoRecordSize, 16);
  let count = 0;
  for (const records of ext.lineInfo.values()) {
    let previous = -1;
    for (const record of records) {
      assert.ok(record.fileName.endsWith("core-sample.c"), record.fileName);
      assert.equal(record.line, sourceLines[record.lineNumber - 1], `line ${record.lineNumber}`);
      assert.ok(record.column >= 1 && record.column <= record.line.length + 1);
      assert.ok(record.instructionOffset > previous && record.instructionOffset % 8 === 0);
      previous = record.instructionOffset;
      count++;
    }
  }
  assert.ok(count > 10);
});

test("core_relo records name existing types and well-formed access strings", () => {
  const ext = parseBtfExt(bytes, btf);
  assert.equal(ext.coreRelocationRecordSize, 16);
  const kinds = new Set<number>();
  for (const records of ext.coreRelocations.values()) {
    for (const record of records) {
      assert.ok(btf.has(record.typeId) && record.typeId > 0);
      assert.match(record.accessString, /^\d+(:\d+)*$/);
      assert.equal(btf.string(record.accessStringOffset), record.accessString);
      kinds.add(record.kind);
    }
  }
  assert.deepEqual([...kinds].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
});

test("big-endian .BTF.ext decodes to the same records", () => {
  const bigBtf = Btf.parse(readFileSync(fixtureDirectory + "core-sample-be.btf"));
  const big = parseBtfExt(readFileSync(fixtureDirectory + "core-sample-be.btf.ext"), bigBtf);
  const little = parseBtfExt(bytes, btf);
  assert.equal(big.byteOrder, "big");
  assert.deepEqual({ ...big, byteOrder: "little" }, little);
});

test("malformed .BTF.ext gives BtfFormatError with the offset", () => {
  const mutate = (change: (view: DataView, copy: Uint8Array) => void): Uint8Array => {
    const copy = new Uint8Array(bytes);
    change(new DataView(copy.buffer), copy);
    return copy;
  };
  const cases: [string, Uint8Array, RegExp][] = [
    ["short", bytes.subarray(0, 10), /shorter than the 24-byte BTF.ext header/],
    ["magic", mutate((view) => view.setUint16(0, 0x1111, true)), /bad magic/],
    ["header", mutate((view) => view.setUint32(4, 99999, true)), /header length 99999 out of range/],
    ["func_info length", mutate((view) => view.setUint32(12, 99999, true)), /func_info section .* runs past the end.*byte offset 8/],
    ["record size", mutate((view) => view.setUint32(view.getUint32(4, true) + view.getUint32(8, true), 6, true)), /func_info record size 6 is invalid/],
    ["record count", mutate((view) => view.setUint32(view.getUint32(4, true) + view.getUint32(8, true) + 8, 1000, true)), /1000 records of 8 bytes run past the end/],
    ["string", mutate((view) => view.setUint32(view.getUint32(4, true) + view.getUint32(8, true) + 4, 999999, true)), /string offset 999999 is outside the BTF string section/],
  ];
  for (const [what, input, message] of cases) {
    assert.throws(() => parseBtfExt(input, btf), (error: unknown) => error instanceof BtfFormatError && message.test(error.message) && error.offset !== undefined, what);
  }
});
