import type { Btf } from "./btf.js";
import { BtfBuilder } from "./btf-builder.js";
import type { BtfEncodableType, BtfInt } from "./btf-types.js";
import { expectBtf } from "./expect-btf.js";
import { argumentError, expectObject } from "../sys/argument-checks.js";

/** BTF features a kernel may lack; each one is probed by the `features` layer. */
export interface BtfFeatures {
  /** FUNC and FUNC_PROTO kinds. */
  func: boolean;
  /** FUNC with global linkage. */
  funcGlobal: boolean;
  /** VAR and DATASEC kinds. */
  datasec: boolean;
  /** DATASEC names starting with "?". */
  qmarkDatasec: boolean;
  float: boolean;
  declTag: boolean;
  typeTag: boolean;
  /** ENUM64, and signedness (kind_flag) on ENUM. */
  enum64: boolean;
}

export const allBtfFeatures: Readonly<BtfFeatures> = Object.freeze({
  func: true, funcGlobal: true, datasec: true, qmarkDatasec: true, float: true, declTag: true, typeTag: true, enum64: true,
});

function byteInt(name: string): BtfInt {
  return { kind: "int", name, size: 1, signed: false, char: false, bool: false, bitOffset: 0, bits: 8 };
}

function checkSanitizeArguments(operation: string, btf: unknown, features: unknown): void {
  expectBtf(operation, btf);
  const given = expectObject<Record<string, unknown>>(operation, "features", features);
  for (const name of Object.keys(allBtfFeatures)) {
    if (typeof given[name] !== "boolean") throw argumentError(operation, `features.${name}`, "a boolean", given[name]);
  }
}

/** True when `btf` uses something `features` lacks, so sanitizeBtf would change it. */
export function btfNeedsSanitizing(btf: Btf, features: BtfFeatures): boolean {
  checkSanitizeArguments("check BTF features", btf, features);
  for (const id of btf.ids()) {
    const kind = btf.kindOf(id);
    if (!features.func && (kind === "function" || kind === "functionProto")) return true;
    if (!features.datasec && (kind === "variable" || kind === "dataSection")) return true;
    if (!features.float && kind === "float") return true;
    if (!features.declTag && kind === "declTag") return true;
    if (!features.typeTag && kind === "typeTag") return true;
    if (!features.enum64 && (kind === "enum64" || (kind === "enum" && (btf.type(id) as { signed: boolean }).signed))) return true;
    if (!features.funcGlobal && kind === "function" && (btf.type(id) as { linkage: string }).linkage !== "static") return true;
    if (!features.qmarkDatasec && kind === "dataSection" && btf.nameOf(id).startsWith("?")) return true;
  }
  return false;
}

/**
 * Rewrite the kinds a kernel without `features` rejects into ones it accepts, the way
 * libbpf does before BPF_BTF_LOAD (type ids stay the same, so programs' references hold):
 * VAR and DECL_TAG become a 1-byte INT, DATASEC a STRUCT of its variables, FUNC_PROTO an
 * ENUM, FUNC a TYPEDEF (or a static FUNC), FLOAT an anonymous STRUCT of the same size,
 * TYPE_TAG a CONST, ENUM64 a UNION of 1-byte INT members (an "enum64_placeholder" INT
 * is appended), and signed ENUMs lose their signedness flag. Pure: returns a new Btf.
 */
export function sanitizeBtf(btf: Btf, features: BtfFeatures): Btf {
  checkSanitizeArguments("sanitize BTF", btf, features);
  const builder = new BtfBuilder({ base: btf.base });
  let placeholder = 0;
  const pendingPlaceholder: number[] = [];
  for (const [id, original] of btf.entries()) {
    const type = original as BtfEncodableType;
    let replacement: BtfEncodableType = type;
    if ((!features.datasec && type.kind === "variable") || (!features.declTag && type.kind === "declTag")) {
      replacement = byteInt(type.name);
    } else if (!features.datasec && type.kind === "dataSection") {
      replacement = {
        kind: "struct",
        name: type.name.replace(/[.?]/g, "_"),
        size: type.size,
        kindFlag: false,
        members: type.variables.map((variable) => ({ name: btf.nameOf(variable.type), type: variable.type, bitOffset: variable.offset * 8, bitfieldSize: 0 })),
      };
    } else if (!features.qmarkDatasec && type.kind === "dataSection" && type.name.startsWith("?")) {
      replacement = { ...type, name: "_" + type.name.slice(1) };
    } else if (!features.func && type.kind === "functionProto") {
      replacement = { kind: "enum", name: type.name, size: 4, signed: false, values: type.parameters.map((parameter) => ({ name: parameter.name, value: parameter.type })) };
    } else if (!features.func && type.kind === "function") {
      replacement = { kind: "typedef", name: type.name, type: type.type };
    } else if (!features.funcGlobal && type.kind === "function") {
      replacement = { ...type, linkage: "static" };
    } else if (!features.float && type.kind === "float") {
      replacement = { kind: "struct", name: "", size: type.size, kindFlag: false, members: [] };
    } else if (!features.typeTag && type.kind === "typeTag") {
      replacement = { kind: "const", name: "", type: type.type };
    } else if (!features.enum64 && type.kind === "enum") {
      replacement = { ...type, signed: false };
    } else if (!features.enum64 && type.kind === "enum64") {
      // The placeholder id is only known once every original type is added; patched below.
      pendingPlaceholder.push(id);
      replacement = { kind: "union", name: type.name, size: type.size, kindFlag: false, members: type.values.map((value) => ({ name: value.name, type: 0, bitOffset: 0, bitfieldSize: 0 })) };
    }
    builder.add(replacement);
  }
  if (pendingPlaceholder.length > 0) {
    placeholder = builder.add(byteInt("enum64_placeholder"));
    for (const id of pendingPlaceholder) {
      const union = builder.type(id) as Extract<BtfEncodableType, { kind: "union" }>;
      builder.replace(id, { ...union, members: union.members.map((member) => ({ ...member, type: placeholder })) });
    }
  }
  return builder.build({ byteOrder: btf.byteOrder });
}
