import { test } from "node:test";
import assert from "node:assert/strict";
import { Btf } from "../../src/btf/btf.js";
import { encodeBtf } from "../../src/btf/btf-builder.js";
import { allBtfFeatures } from "../../src/btf/btf-sanitize.js";
import { btfForKernel, kernelBtfFeatures } from "../../src/core/btf-support.js";
import { btfLoad } from "../../src/sys/bpf.js";
import { libcClose } from "../../src/sys/libc.js";
import { skipUnlessRoot } from "../support/kernel.js";

const int = { kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 } as const;

test("this kernel's BTF features are probed, each by loading a blob that uses it", (t) => {
  if (skipUnlessRoot(t, "to load BTF")) return;
  const features = kernelBtfFeatures();
  // Linux 6.x accepts every kind netbpf knows; each probe really loaded something.
  assert.deepEqual(features, { ...allBtfFeatures });
});

test("BTF is passed through untouched when the kernel supports everything it uses", (t) => {
  if (skipUnlessRoot(t, "to load BTF")) return;
  const raw = Buffer.from(encodeBtf([int, { kind: "float", name: "double", size: 8 }]));
  const result = btfForKernel(raw);
  assert.equal(result.sanitized, false);
  assert.equal(result.bytes, raw);
});

test("BTF using kinds an older kernel lacks is rewritten into ones it accepts, and still loads", (t) => {
  if (skipUnlessRoot(t, "to load BTF")) return;
  const raw = Buffer.from(encodeBtf([
    int,
    { kind: "float", name: "double", size: 8 },
    { kind: "typeTag", name: "user", type: 1, attribute: false },
    { kind: "pointer", name: "", type: 3 },
    { kind: "enum64", name: "wide", size: 8, signed: false, values: [{ name: "W", value: 1n << 40n }] },
  ]));
  const older = { ...allBtfFeatures, float: false, typeTag: false, enum64: false };
  const result = btfForKernel(raw, older);
  assert.equal(result.sanitized, true);
  const kinds = [...Btf.parse(result.bytes).entries()].map(([, t]) => t.kind);
  assert.ok(!kinds.includes("float") && !kinds.includes("typeTag") && !kinds.includes("enum64"), kinds.join(","));
  libcClose(btfLoad(result.bytes));
});
