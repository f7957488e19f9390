/**
 * How a BTF type looks as a JavaScript value: the layout both the binding
 * generator (`netbpf gen`) and the run-time decoder (`netbpf load --dump`)
 * follow, so generated code and the CLI agree on every field.
 */
import type { Btf } from "./btf.js";
import { sizeOf, skipQualifiers } from "./btf-query.js";
import { UsageError } from "../sys/errors.js";
import { expectBtf, expectBtfType } from "./expect-btf.js";
import { argumentError, expectBytes, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";

export type ValueLayout =
  /** 1, 2 or 4 bytes: a number; 8 bytes: a bigint. Pointers are unsigned 8-byte integers. */
  | { kind: "integer"; size: 1 | 2 | 4 | 8; signed: boolean }
  | { kind: "boolean"; size: 1 }
  | { kind: "float"; size: 4 | 8 }
  | { kind: "enum"; size: 1 | 2 | 4 | 8; signed: boolean; typeId: number; name: string; values: { name: string; value: number | bigint }[] }
  /** Opaque or byte-array data: a Buffer. */
  | { kind: "bytes"; size: number }
  /** char[N]: a NUL-terminated UTF-8 string. */
  | { kind: "string"; size: number }
  | { kind: "array"; size: number; length: number; element: ValueLayout }
  | { kind: "record"; size: number; union: boolean; typeId: number; name: string; fields: FieldLayout[] };

export interface FieldLayout {
  /** Property name (the C member name; `anonymous<N>` for unnamed unions). */
  name: string;
  /** Byte offset from the start of the record. */
  offset: number;
  layout: ValueLayout;
  /** For bitfields: bit position within the bytes starting at `offset`, width and signedness. Layout is then an integer. */
  bitfield?: { shift: number; bits: number; signed: boolean };
  /**
   * Members of an anonymous union flattened into a struct share a group:
   * encoding writes only the first member of the group that is set.
   */
  unionGroup?: number;
}

const operation = "describe BTF type";
const maximumDepth = 32;

/** Computes the value layout of a BTF type (typedefs and qualifiers followed). */
export function valueLayout(btf: Btf, typeId: number, depth = 0): ValueLayout {
  if (depth === 0) expectBtfType(operation, btf, typeId, "btf", "typeId");
  else expectInteger(operation, "depth", depth, 0);
  if (depth > maximumDepth) throw new UsageError(operation, `${btf.describe(typeId)} nests deeper than ${maximumDepth} levels`);
  const id = skipQualifiers(btf, typeId);
  const type = btf.type(id);
  switch (type.kind) {
    case "int": {
      if (type.bool && type.size === 1) return { kind: "boolean", size: 1 };
      if (type.bits !== type.size * 8 || type.bitOffset !== 0) {
        // An INT that encodes its own bit width: only valid as a struct member (handled there).
        return { kind: "integer", size: integerSize(type.size, btf, id), signed: type.signed };
      }
      if (type.size === 1 || type.size === 2 || type.size === 4 || type.size === 8) return { kind: "integer", size: type.size, signed: type.signed };
      return { kind: "bytes", size: type.size };
    }
    case "pointer":
      return { kind: "integer", size: 8, signed: false };
    case "float":
      return type.size === 4 || type.size === 8 ? { kind: "float", size: type.size } : { kind: "bytes", size: type.size };
    case "enum":
    case "enum64":
      return { kind: "enum", size: integerSize(type.size, btf, id), signed: type.signed, typeId: id, name: type.name, values: type.values.map((v) => ({ name: v.name, value: v.value })) };
    case "array": {
      const element = valueLayout(btf, type.type, depth + 1);
      const size = sizeOf(btf, id);
      if (element.kind === "integer" && element.size === 1) {
        return isCharType(btf, type.type) ? { kind: "string", size } : { kind: "bytes", size };
      }
      return { kind: "array", size, length: type.length, element };
    }
    case "struct":
    case "union":
      return recordLayout(btf, id, depth);
    case "variable":
      return valueLayout(btf, type.type, depth + 1);
    case "dataSection":
      return dataSectionRecord(btf, id, type.name, type.size, type.variables, depth);
    case "void":
    case "forward":
    case "function":
    case "functionProto":
      throw new UsageError(operation, `${btf.describe(id)} has no size to lay out as a value`, "only complete types (integers, enums, structs, unions, arrays) can be map keys, values or events");
    default:
      return { kind: "bytes", size: sizeOf(btf, id) };
  }
}

/**
 * A DATASEC (the value type of a .rodata, .data or .bss map) as a record of its
 * variables, as bpftool shows them; a variable whose type cannot be laid out
 * at its size stays bytes, and the gaps between variables are not shown.
 */
function dataSectionRecord(btf: Btf, id: number, name: string, size: number, variables: readonly { type: number; offset: number; size: number }[], depth: number): ValueLayout & { kind: "record" } {
  const fields: FieldLayout[] = [];
  for (const variable of [...variables].sort((a, b) => a.offset - b.offset)) {
    const declared = btf.type(variable.type);
    if (declared.kind !== "variable" || variable.size === 0 || variable.offset + variable.size > size) continue;
    let layout: ValueLayout = { kind: "bytes", size: variable.size };
    try {
      const typed = valueLayout(btf, declared.type, depth + 1);
      if (typed.size === variable.size) layout = typed;
    } catch {
      // Keep the bytes.
    }
    fields.push({ name: declared.name, offset: variable.offset, layout });
  }
  return { kind: "record", size, union: false, typeId: id, name, fields };
}

function integerSize(size: number, btf: Btf, id: number): 1 | 2 | 4 | 8 {
  if (size === 1 || size === 2 || size === 4 || size === 8) return size;
  throw new UsageError(operation, `${btf.describe(id)} is ${size} bytes; only 1, 2, 4 and 8-byte integers and enums are supported`);
}

function isCharType(btf: Btf, id: number): boolean {
  const resolved = skipQualifiers(btf, id);
  const type = btf.type(resolved);
  return type.kind === "int" && (type.name === "char" || (type.char && type.signed));
}

function recordLayout(btf: Btf, id: number, depth: number): ValueLayout {
  const type = btf.type(id);
  if (type.kind !== "struct" && type.kind !== "union") throw new Error("unreachable");
  const fields: FieldLayout[] = [];
  let groups = 0;
  const add = (members: typeof type.members, base: number, union: boolean, group: number | undefined) => {
    members.forEach((member, index) => {
      const bitOffset = base + member.bitOffset;
      const memberId = skipQualifiers(btf, member.type);
      const memberType = btf.type(memberId);
      if (member.name === "" && (memberType.kind === "struct" || memberType.kind === "union")) {
        if (memberType.kind === "struct" && !union) {
          add(memberType.members, bitOffset, false, group);
          return;
        }
        if (memberType.kind === "union" && !union && group === undefined) {
          add(memberType.members, bitOffset, true, groups++);
          return;
        }
      }
      const name = member.name === "" ? `anonymous${index}` : member.name;
      let bits = member.bitfieldSize;
      let start = bitOffset;
      if (bits === 0 && memberType.kind === "int" && (memberType.bits !== memberType.size * 8 || memberType.bitOffset !== 0)) {
        bits = memberType.bits;
        start += memberType.bitOffset;
      }
      if (bits > 0) {
        if (bits > 32) {
          throw new UsageError(operation, `bitfield ${btf.describe(id)}.${name} is ${bits} bits wide; bitfields wider than 32 bits are not supported`, "make it a plain integer member");
        }
        const signed = (memberType.kind === "int" || memberType.kind === "enum" || memberType.kind === "enum64") && memberType.signed;
        fields.push({ name, offset: Math.floor(start / 8), layout: { kind: "integer", size: 4, signed }, bitfield: { shift: start % 8, bits, signed }, unionGroup: group });
        return;
      }
      if (start % 8 !== 0) throw new UsageError(operation, `member ${btf.describe(id)}.${name} starts at bit ${start}, not on a byte boundary`);
      const layout = valueLayout(btf, member.type, depth + 1);
      if (layout.size === 0 || (layout.kind === "array" && layout.length === 0)) return; // flexible array member: not part of the fixed value
      fields.push({ name, offset: start / 8, layout, unionGroup: group });
    });
  };
  add(type.members, 0, type.kind === "union", undefined);
  // Flattening (or malformed BTF) can repeat a name; later ones get a suffix so every property is distinct.
  const seen = new Set<string>();
  for (const field of fields) {
    let name = field.name;
    for (let n = 2; seen.has(name); n++) name = `${field.name}_${n}`;
    field.name = name;
    seen.add(name);
  }
  return { kind: "record", size: type.size, union: type.kind === "union", typeId: id, name: type.name, fields };
}

/** Reads the bits of a bitfield (at most 32) starting `shift` bits into the bytes at `offset`. */
export function readBitfield(source: Uint8Array, offset: number, shift: number, bits: number, signed: boolean): number {
  checkBitfield("read bitfield", "source", source, offset, shift, bits);
  return bitfieldValue(source, offset, shift, bits, signed);
}

function bitfieldValue(source: Uint8Array, offset: number, shift: number, bits: number, signed: boolean): number {
  const span = Math.ceil((shift + bits) / 8);
  let word = 0;
  for (let i = span - 1; i >= 0; i--) word = word * 256 + source[offset + i]!;
  let value = Math.floor(word / 2 ** shift) % 2 ** bits;
  if (signed && value >= 2 ** (bits - 1)) value -= 2 ** bits;
  return value;
}

/** Writes a bitfield, leaving the other bits of the bytes it shares untouched. */
export function writeBitfield(target: Uint8Array, offset: number, shift: number, bits: number, value: number): void {
  checkBitfield("write bitfield", "target", target, offset, shift, bits);
  if (typeof value !== "number" || Number.isNaN(value)) throw argumentError("write bitfield", "value", "a number", value);
  const span = Math.ceil((shift + bits) / 8);
  let word = 0;
  for (let i = span - 1; i >= 0; i--) word = word * 256 + target[offset + i]!;
  const old = Math.floor(word / 2 ** shift) % 2 ** bits;
  const field = ((Math.trunc(value) % 2 ** bits) + 2 ** bits) % 2 ** bits;
  word = word - old * 2 ** shift + field * 2 ** shift;
  for (let i = 0; i < span; i++) {
    target[offset + i] = word % 256;
    word = Math.floor(word / 256);
  }
}

/** A bitfield's place: whole bytes at `offset` in `bytes` holding `bits` (1 to 32) bits from `shift`. */
function checkBitfield(operation: string, name: string, bytes: unknown, offset: unknown, shift: unknown, bits: unknown): void {
  expectBytes(operation, name, bytes);
  expectInteger(operation, "shift", shift, 0, 7);
  expectInteger(operation, "bits", bits, 1, 32);
  expectInteger(operation, "offset", offset, 0, (bytes as Uint8Array).length - Math.ceil(((shift as number) + (bits as number)) / 8));
}

/** Decodes a value with a layout into plain JavaScript (numbers, bigints, strings, Buffers, objects, arrays). */
export function decodeWithLayout(layout: ValueLayout, source: Buffer, offset: number): unknown {
  const kind = expectObject<ValueLayout>("decode value", "layout", layout).kind;
  if (typeof kind !== "string" || typeof layout.size !== "number") throw argumentError("decode value", "layout", "a ValueLayout (from valueLayout)", layout);
  if (!Buffer.isBuffer(source)) throw argumentError("decode value", "source", "a Buffer", source);
  expectInteger("decode value", "offset", offset, 0, Math.max(0, source.length - layout.size));
  return decodeValue(layout, source, offset);
}

function decodeValue(layout: ValueLayout, source: Buffer, offset: number): unknown {
  switch (layout.kind) {
    case "integer": return readInteger(source, offset, layout.size, layout.signed);
    case "enum": return readInteger(source, offset, layout.size, layout.signed);
    case "boolean": return source[offset] !== 0;
    case "float": return layout.size === 4 ? source.readFloatLE(offset) : source.readDoubleLE(offset);
    case "bytes": return Buffer.from(source.subarray(offset, offset + layout.size));
    case "string": {
      const slice = source.subarray(offset, offset + layout.size);
      const end = slice.indexOf(0);
      return slice.toString("utf8", 0, end < 0 ? layout.size : end);
    }
    case "array": {
      const stride = layout.size / layout.length;
      const out: unknown[] = [];
      for (let i = 0; i < layout.length; i++) out.push(decodeValue(layout.element, source, offset + i * stride));
      return out;
    }
    case "record": {
      const out: Record<string, unknown> = {};
      for (const field of layout.fields) {
        out[field.name] = field.bitfield
          ? bitfieldValue(source, offset + field.offset, field.bitfield.shift, field.bitfield.bits, field.bitfield.signed)
          : decodeValue(field.layout, source, offset + field.offset);
      }
      return out;
    }
  }
}

function readInteger(source: Buffer, offset: number, size: 1 | 2 | 4 | 8, signed: boolean): number | bigint {
  switch (size) {
    case 1: return signed ? source.readInt8(offset) : source.readUInt8(offset);
    case 2: return signed ? source.readInt16LE(offset) : source.readUInt16LE(offset);
    case 4: return signed ? source.readInt32LE(offset) : source.readUInt32LE(offset);
    case 8: return signed ? source.readBigInt64LE(offset) : source.readBigUInt64LE(offset);
  }
}

/** A decoded value made JSON-friendly: Buffers as hex, enum numbers kept (names added by `enumName`). */
export function jsonFriendly(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString("hex");
  if (Array.isArray(value)) return value.map(jsonFriendly);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = jsonFriendly(v);
    return out;
  }
  return value;
}

/** Finds a struct, union, enum or typedef by name for `--type`. */
export function findNamedType(btf: Btf, name: string, operation = "find BTF type"): number {
  expectString("find BTF type", "operation", operation);
  expectBtf(operation, btf);
  expectString(operation, "name", name);
  const bare = name.replace(/^(struct|union|enum)\s+/, "");
  for (const kind of ["struct", "union", "typedef"] as const) {
    const ids = btf.findByName(bare, kind);
    if (ids.length > 0) return ids[0]!;
  }
  const available: string[] = [];
  for (const [, type] of btf.entries()) {
    if ((type.kind === "struct" || type.kind === "union") && type.name) available.push(type.name);
    if (available.length > 40) break;
  }
  throw new UsageError(operation, `the object's BTF has no struct, union or typedef named "${bare}"`,
    available.length ? `structs in the object: ${available.join(", ")}` : "the object's BTF has no named structs");
}
