import assert from "node:assert/strict";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { encodeBtf } from "../../src/btf/btf-builder.js";
import { allBtfFeatures, btfNeedsSanitizing, sanitizeBtf, type BtfFeatures } from "../../src/btf/btf-sanitize.js";
import type { BtfEncodableType } from "../../src/btf/btf-types.js";
import { skipUnlessKernel } from "../support/kernel.js";
import { everyKind } from "./support/every-kind.js";
import { kernelBtfLoadAvailable, loadBtfIntoKernel } from "./support/kernel-btf-load.js";

function kernelSafe(): Btf {
  // The kernel refuses extern linkage in loaded BTF. A "?" section name exercises qmarkDatasec.
  // Varargs are dropped: the FUNC_PROTO -> ENUM rewrite (libbpf's) turns an unnamed parameter into an
  // unnamed enumerator, which today's kernels reject (but today's kernels never need that rewrite).
  const types: BtfEncodableType[] = everyKind().map((type) => {
    if ((type.kind === "variable" || type.kind === "function") && type.linkage === "extern") return { ...type, linkage: "global" as const };
    if (type.kind === "functionProto") return { ...type, parameters: type.parameters.filter((parameter) => parameter.name !== "") };
    return type;
  });
  types.push({ kind: "dataSection", name: "?.maybe", size: 4, variables: [{ type: 21, offset: 0, size: 4 }] });
  return Btf.parse(encodeBtf(types));
}

const without = (feature: keyof BtfFeatures): BtfFeatures => ({ ...allBtfFeatures, [feature]: false });
const kinds = (btf: Btf) => new Set([...btf.entries()].map(([, type]) => type.kind));

test("with every feature supported nothing changes", () => {
  const btf = kernelSafe();
  assert.equal(btfNeedsSanitizing(btf, allBtfFeatures), false);
  assert.deepEqual([...sanitizeBtf(btf, allBtfFeatures).entries()], [...btf.entries()]);
});

test("each missing feature rewrites its kinds as libbpf does, keeping type ids", () => {
  const btf = kernelSafe();
  const id = (name: string) => btf.findType(name);

  const noDatasec = sanitizeBtf(btf, without("datasec"));
  assert.deepEqual(noDatasec.type(id("counter")), { kind: "int", name: "counter", size: 1, signed: false, char: false, bool: false, bitOffset: 0, bits: 8 });
  assert.deepEqual(noDatasec.type(id(".data")), {
    kind: "struct", name: "_data", size: 8, kindFlag: false,
    members: [{ name: "counter", type: id("counter"), bitOffset: 0, bitfieldSize: 0 }, { name: "hidden", type: id("hidden"), bitOffset: 32, bitfieldSize: 0 }],
  });

  const noQmark = sanitizeBtf(btf, without("qmarkDatasec"));
  assert.equal(noQmark.nameOf(id("?.maybe")), "_.maybe");

  const noFunc = sanitizeBtf(btf, without("func"));
  const proto = (btf.type(id("walk")) as { type: number }).type;
  assert.deepEqual(noFunc.type(proto), { kind: "enum", name: "", size: 4, signed: false, values: [{ name: "n", value: 3 }] });
  assert.deepEqual(noFunc.type(id("walk")), { kind: "typedef", name: "walk", type: proto });

  const noGlobal = sanitizeBtf(btf, without("funcGlobal"));
  assert.equal((noGlobal.type(id("walk")) as { linkage: string }).linkage, "static");

  const noFloat = sanitizeBtf(btf, without("float"));
  assert.deepEqual(noFloat.type(id("double")), { kind: "struct", name: "", size: 8, kindFlag: false, members: [] });

  const noDeclTag = sanitizeBtf(btf, without("declTag"));
  assert.equal(noDeclTag.type(id("tag")).kind, "int");

  const noTypeTag = sanitizeBtf(btf, without("typeTag"));
  assert.deepEqual(noTypeTag.type(id("user")), { kind: "const", name: "", type: 1 });

  const noEnum64 = sanitizeBtf(btf, without("enum64"));
  assert.equal(noEnum64.typeCount, btf.typeCount + 1, "one placeholder INT appended");
  const placeholder = noEnum64.typeCount - 1;
  assert.equal(noEnum64.nameOf(placeholder), "enum64_placeholder");
  assert.equal(noEnum64.sizeOf(placeholder), 1);
  const union = noEnum64.type(id("wide"));
  assert.equal(union.kind, "union");
  assert.deepEqual((union as { members: unknown[] }).members, [
    { name: "W_MAX", type: placeholder, bitOffset: 0, bitfieldSize: 0 },
    { name: "W_SMALL", type: placeholder, bitOffset: 0, bitfieldSize: 0 },
  ]);
  assert.equal((noEnum64.type(id("color")) as { signed: boolean }).signed, false, "signed enums lose the kind flag");

  for (const feature of Object.keys(allBtfFeatures) as (keyof BtfFeatures)[]) {
    assert.equal(btfNeedsSanitizing(btf, without(feature)), true, feature);
    assert.equal(btfNeedsSanitizing(sanitizeBtf(btf, without(feature)), without(feature)), false, `${feature} is gone after sanitizing`);
  }
});

test("with nothing supported only pre-5.x kinds remain, and the kernel accepts every variant", (t) => {
  const btf = kernelSafe();
  const none: BtfFeatures = { func: false, funcGlobal: false, datasec: false, qmarkDatasec: false, float: false, declTag: false, typeTag: false, enum64: false };
  const sanitized = sanitizeBtf(btf, none);
  for (const kind of ["function", "functionProto", "variable", "dataSection", "float", "declTag", "typeTag", "enum64"]) {
    assert.equal(kinds(sanitized).has(kind as never), false, kind);
  }
  if (skipUnlessKernel(t, kernelBtfLoadAvailable(), "BPF_BTF_LOAD needs root on x86_64")) return;
  for (const features of [none, ...(Object.keys(allBtfFeatures) as (keyof BtfFeatures)[]).map(without)]) {
    const outcome = loadBtfIntoKernel(sanitizeBtf(btf, features).bytes);
    assert.ok(outcome.ok, outcome.ok ? "" : `${JSON.stringify(features)}: ${outcome.error}\n${outcome.log.slice(-400)}`);
  }
});

test("sanitizing refuses features that are not a complete set of booleans", () => {
  const btf = Btf.parse(encodeBtf(everyKind()));
  const untyped = (f: Function, ...args: unknown[]): unknown => f(...args);
  assert.throws(() => untyped(sanitizeBtf, btf, { ...allBtfFeatures, float: 1 }), /sanitize BTF: features\.float must be a boolean, got 1 \(a number\)/);
  const { enum64: _, ...withoutEnum64 } = allBtfFeatures;
  assert.throws(() => untyped(btfNeedsSanitizing, btf, withoutEnum64), /features\.enum64 must be a boolean, got undefined/);
  assert.throws(() => untyped(btfNeedsSanitizing, new Uint8Array(24), allBtfFeatures), /btf must be a Btf/);
  assert.equal(btfNeedsSanitizing(btf, allBtfFeatures), false);
});
