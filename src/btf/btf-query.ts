import { Btf } from "./btf.js";
import { BtfFormatError } from "./btf-format-error.js";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { btfKindKernelName, isCompositeKind, isEnumKind, type BtfKind, type BtfMember } from "./btf-types.js";
import { expectBtf, expectBtfType, expectTypeIdOrName } from "./expect-btf.js";
import { expectBoolean, expectObject, expectString } from "../sys/argument-checks.js";

/** Longest typedef/qualifier chain followed before declaring a loop. */
const maximumChainLength = 256;
/** Deepest nesting of arrays/structs followed when computing sizes and alignments. */
const maximumNesting = 64;
/** Size of a pointer in BPF and in the (64-bit) kernels netbpf targets. */
export const pointerSize = 8;

/** Malformed BTF found while following types (loops, types containing themselves). */
function queryError(message: string, typeId?: number, hint?: string): BtfFormatError {
  return new BtfFormatError(message, typeId === undefined ? {} : { typeId }, "query BTF", hint);
}

/** A type, member, index or enumerator asked for is not there (or not of the kind the query needs). */
export class BtfLookupError extends NetbpfError {
  /** The type the lookup was in, when there was one. */
  readonly typeId: number | undefined;
  constructor(message: string, typeId?: number, hint = "check the names against the BTF, e.g. with `bpftool btf dump file /sys/kernel/btf/vmlinux format c`") {
    super("look up BTF type", message, hint);
    this.typeId = typeId;
  }
}

function lookupError(message: string, typeId?: number, hint?: string): BtfLookupError {
  return new BtfLookupError(message, typeId, hint);
}

/**
 * Follow const/volatile/restrict/type-tag (and, unless `keepTypedefs`, typedef)
 * references from `id`; returns the first id that is none of those.
 */
export function skipQualifiers(btf: Btf, id: number, options: { keepTypedefs?: boolean } = {}): number {
  if (!(btf instanceof Btf && typeof id === "number" && btf.has(id)) || typeof options !== "object" || options === null || (options.keepTypedefs !== undefined && typeof options.keepTypedefs !== "boolean")) {
    expectBtfType("skip BTF qualifiers", btf, id);
    expectObject("skip BTF qualifiers", "options", options);
    expectBoolean("skip BTF qualifiers", "options.keepTypedefs", options.keepTypedefs, true);
  }
  return skipChain(btf, id, options.keepTypedefs ? true : false);
}

/** skipQualifiers for ids already checked (the walks below). */
function skipChain(btf: Btf, id: number, keepTypedefs = false): number {
  let current = id;
  for (let step = 0; step < maximumChainLength; step++) {
    const kind = btf.kindOf(current);
    // isModifierKind without its argument check: kinds read from the BTF are always valid.
    if (!(kind === "const" || kind === "volatile" || kind === "restrict" || kind === "typeTag" || (kind === "typedef" && !keepTypedefs))) return current;
    current = (btf.type(current) as { type: number }).type;
  }
  throw queryError(`typedef/qualifier chain starting at ${btf.describe(id)} is longer than ${maximumChainLength} (a loop?)`, id);
}

/** Size in bytes of a type, like sizeof() in C (and libbpf's btf__resolve_size). */
export function sizeOf(btf: Btf, id: number): number {
  expectBtfType("size of BTF type", btf, id);
  return sizeOfChecked(btf, id);
}

function sizeOfChecked(btf: Btf, id: number): number {
  let multiplier = 1;
  let current = id;
  for (let step = 0; step < maximumChainLength; step++) {
    const type = btf.type(current);
    switch (type.kind) {
      case "int": case "struct": case "union": case "enum": case "enum64": case "dataSection": case "float":
        return checkedSize(multiplier * type.size, id);
      case "pointer":
        return checkedSize(multiplier * pointerSize, id);
      case "typedef": case "volatile": case "const": case "restrict": case "variable": case "declTag": case "typeTag":
        current = type.type;
        break;
      case "array":
        multiplier *= type.length;
        current = type.type;
        break;
      default:
        throw lookupError(`${btf.describe(current)} has no size (${btfKindKernelName[type.kind]})`, id, "only data types have a size");
    }
  }
  throw queryError(`type chain starting at ${btf.describe(id)} is longer than ${maximumChainLength} (a loop?)`, id);
}

function checkedSize(size: number, id: number): number {
  if (!Number.isSafeInteger(size) || size > 0xffffffff) throw queryError(`size ${size} is out of range`, id);
  return size;
}

/** Alignment in bytes, as C would lay the type out (libbpf's btf__align_of); 1 for packed structs. */
export function alignmentOf(btf: Btf, id: number): number {
  expectBtfType("alignment of BTF type", btf, id);
  return alignmentWithin(btf, id, new Map(), 0);
}

/** `known` memoizes results (shared sub-structs are visited once) and marks types in progress (-1) to catch a struct containing itself. */
function alignmentWithin(btf: Btf, id: number, known: Map<number, number>, depth: number): number {
  if (depth > maximumNesting) throw queryError(`types nest deeper than ${maximumNesting} levels below ${btf.describe(id)}`, id);
  const resolved = skipChain(btf, id);
  const cached = known.get(resolved);
  if (cached === -1) throw queryError(`${btf.describe(resolved)} contains itself`, resolved);
  if (cached !== undefined) return cached;
  known.set(resolved, -1);
  const type = btf.type(resolved);
  let alignment: number;
  switch (type.kind) {
    case "int": case "enum": case "enum64": case "float":
      alignment = Math.max(1, Math.min(pointerSize, type.size));
      break;
    case "pointer":
      alignment = pointerSize;
      break;
    case "array":
      alignment = alignmentWithin(btf, type.type, known, depth + 1);
      break;
    case "struct": case "union": {
      let maximum = 1;
      let packed = false;
      for (const member of type.members) {
        const memberAlignment = alignmentWithin(btf, member.type, known, depth + 1);
        if (member.bitfieldSize === 0 && member.bitOffset % (8 * memberAlignment) !== 0) packed = true;
        maximum = Math.max(maximum, memberAlignment);
      }
      alignment = packed || type.size % maximum !== 0 ? 1 : maximum;
      break;
    }
    default:
      throw lookupError(`${btf.describe(id)} has no alignment (${btfKindKernelName[type.kind]})`, id);
  }
  known.set(resolved, alignment);
  return alignment;
}

/** Where a member sits inside a struct or union. */
export interface MemberLocation {
  name: string;
  /** The member's type (as declared, qualifiers and typedefs not skipped). */
  type: number;
  /** Offset from the start of the outermost struct, in bits. */
  bitOffset: number;
  /** Offset in whole bytes (bitOffset / 8 rounded down). */
  byteOffset: number;
  /** Bitfield width in bits, 0 for an ordinary member. */
  bitfieldSize: number;
  /** Member indexes from the struct down to the member, through anonymous members. */
  path: number[];
  /** The struct or union that directly contains the member. */
  parent: number;
}

/** Effective bit offset and bitfield size of a member, including the legacy (kind_flag 0) int encoding. */
function memberBits(btf: Btf, member: BtfMember, kindFlag: boolean): { bitOffset: number; bitfieldSize: number } {
  if (kindFlag) return { bitOffset: member.bitOffset, bitfieldSize: member.bitfieldSize };
  const target = btf.type(skipChain(btf, member.type));
  if (target.kind === "int" && (target.bitOffset !== 0 || target.bits !== target.size * 8)) {
    return { bitOffset: member.bitOffset + target.bitOffset, bitfieldSize: target.bits };
  }
  return { bitOffset: member.bitOffset, bitfieldSize: 0 };
}

/**
 * Find a member by name in a struct or union (typedefs and qualifiers skipped),
 * looking inside anonymous struct/union members as C does. Undefined when absent.
 */
export function findMember(btf: Btf, id: number, name: string): MemberLocation | undefined {
  expectBtfType("find BTF member", btf, id);
  return memberOf(btf, id, expectString("find BTF member", "name", name));
}

function memberOf(btf: Btf, id: number, name: string): MemberLocation | undefined {
  return searchMember(btf, skipChain(btf, id), name, 0, [], 0, new Set());
}

/** `searched` holds anonymous types already known not to contain the name, so shared ones are searched once. */
function searchMember(btf: Btf, id: number, name: string, baseBits: number, path: number[], depth: number, searched: Set<number>): MemberLocation | undefined {
  if (depth > maximumNesting) throw queryError(`anonymous members nest deeper than ${maximumNesting} levels`, id);
  const type = btf.type(id);
  if (type.kind !== "struct" && type.kind !== "union") {
    throw lookupError(`${btf.describe(id)} is not a struct or union, so it has no member "${name}"`, id);
  }
  for (let index = 0; index < type.members.length; index++) {
    const member = type.members[index]!;
    if (member.name === name) {
      const bits = memberBits(btf, member, type.kindFlag);
      const bitOffset = baseBits + bits.bitOffset;
      return { name, type: member.type, bitOffset, byteOffset: Math.floor(bitOffset / 8), bitfieldSize: bits.bitfieldSize, path: [...path, index], parent: id };
    }
    if (member.name === "") {
      const inner = skipChain(btf, member.type);
      if (isCompositeKind(btf.kindOf(inner)) && !searched.has(inner)) {
        const found = searchMember(btf, inner, name, baseBits + member.bitOffset, [...path, index], depth + 1, searched);
        if (found) return found;
        searched.add(inner);
      }
    }
  }
  return undefined;
}

/** Resolve a root type given by name: struct, then union, then typedef; "struct x" / "union x" pick the kind. */
export function findRootType(btf: Btf, name: string): number {
  expectBtf("find BTF type", btf);
  return rootType(btf, expectString("find BTF type", "name", name));
}

function rootType(btf: Btf, name: string): number {
  const trimmed = name.trim();
  const match = /^(struct|union|enum|typedef)\s+(\S+)$/.exec(trimmed);
  if (match) return btf.findType(match[2]!, match[1] as BtfKind);
  for (const kind of ["struct", "union", "typedef", "enum", "int"] as const) {
    const ids = btf.findByName(trimmed, kind);
    if (ids.length > 0) return ids[0]!;
  }
  return btf.findType(trimmed);
}

/** Result of a path query such as "sk_buff.cb[2]". */
export interface FieldLocation {
  /** Type of the field reached (as declared). */
  type: number;
  bitOffset: number;
  byteOffset: number;
  bitfieldSize: number;
  /** Size in bytes of the field's type. */
  size: number;
}

type PathStep = { member: string } | { index: number };

function parsePath(path: string): PathStep[] {
  const steps: PathStep[] = [];
  let position = 0;
  const pattern = /\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*(\d+)\s*\])/y;
  while (position < path.length) {
    pattern.lastIndex = position;
    const match = pattern.exec(path);
    if (!match) {
      if (/^\s*$/.test(path.slice(position))) break;
      throw new UsageError("query BTF", `cannot parse field path "${path}" at position ${position}`, 'write paths like "len", "cb[2]" or "__sk_common.skc_dport"');
    }
    steps.push(match[1] !== undefined ? { member: match[1] } : { index: Number(match[2]) });
    position = pattern.lastIndex;
  }
  return steps;
}

/**
 * Locate a field by path from a root type: `fieldLocation(btf, "sk_buff", "cb[2]")`,
 * or with the root in the path: `fieldLocation(btf, "sock.__sk_common.skc_dport")`.
 */
export function fieldLocation(btf: Btf, root: string | number, path?: string): FieldLocation {
  expectTypeIdOrName("locate BTF field", expectBtf("locate BTF field", btf), root, "root");
  if (path !== undefined) expectString("locate BTF field", "path", path);
  let rootId: number;
  let rest: string;
  if (typeof root === "number") {
    rootId = root;
    rest = path ?? "";
  } else if (path === undefined) {
    const match = /^\s*((?:(?:struct|union|typedef)\s+)?[A-Za-z_][A-Za-z0-9_]*)(.*)$/s.exec(root);
    if (!match) throw new UsageError("query BTF", `cannot parse field path "${root}"`, 'write paths like "sk_buff.cb[2]"');
    rootId = rootType(btf, match[1]!);
    rest = match[2]!;
  } else {
    rootId = rootType(btf, root);
    rest = path;
  }
  const normalized = rest.trim();
  const steps = parsePath(normalized.startsWith(".") || normalized.startsWith("[") || normalized === "" ? normalized : "." + normalized);
  let type = rootId;
  let bitOffset = 0;
  let bitfieldSize = 0;
  for (const step of steps) {
    if (bitfieldSize !== 0) throw lookupError(`cannot go past bitfield in ${btf.describe(rootId)}`, rootId);
    if ("member" in step) {
      const found = memberOf(btf, type, step.member);
      if (!found) {
        throw lookupError(`${btf.describe(skipChain(btf, type))} has no member "${step.member}"`, type, "the running kernel's layout may differ; check with `bpftool btf dump file /sys/kernel/btf/vmlinux`");
      }
      bitOffset += found.bitOffset;
      bitfieldSize = found.bitfieldSize;
      type = found.type;
    } else {
      const arrayId = skipChain(btf, type);
      const array = btf.type(arrayId);
      if (array.kind !== "array") throw lookupError(`${btf.describe(arrayId)} is not an array, so it cannot be indexed with [${step.index}]`, arrayId);
      if (array.length !== 0 && step.index >= array.length) throw lookupError(`index ${step.index} is out of bounds for ${btf.describe(arrayId)} of length ${array.length}`, arrayId);
      bitOffset += step.index * sizeOfChecked(btf, array.type) * 8;
      type = array.type;
    }
  }
  return { type, bitOffset, byteOffset: Math.floor(bitOffset / 8), bitfieldSize, size: sizeOfChecked(btf, type) };
}

/** Byte offset of a (non-bitfield) field: `fieldOffset(btf, "sk_buff", "len")` or `fieldOffset(btf, "sk_buff.len")`. */
export function fieldOffset(btf: Btf, root: string | number, path?: string): number {
  const location = fieldLocation(btf, root, path);
  if (location.bitfieldSize !== 0 || location.bitOffset % 8 !== 0) {
    throw lookupError(`${typeof root === "number" ? btf.describe(root) : root}${path ? "." + path : ""} is a bitfield at bit offset ${location.bitOffset}; use fieldLocation for its bit position`);
  }
  return location.byteOffset;
}

/** Value of an enumerator in a named enum: `enumValue(btf, "bpf_map_type", "BPF_MAP_TYPE_ARRAY")`. */
export function enumValue(btf: Btf, enumName: string | number, valueName: string): number | bigint {
  expectTypeIdOrName("find BTF enum value", expectBtf("find BTF enum value", btf), enumName, "enumName");
  expectString("find BTF enum value", "valueName", valueName);
  const ids = typeof enumName === "number" ? [enumName] : [...btf.findByName(enumName, "enum"), ...btf.findByName(enumName, "enum64")];
  if (ids.length === 0) throw lookupError(`no enum named "${enumName}"`);
  for (const id of ids) {
    const type = btf.type(skipChain(btf, id));
    if (!isEnumKind(type.kind)) throw lookupError(`${btf.describe(id)} is not an enum`, id);
    for (const value of (type as { values: { name: string; value: number | bigint }[] }).values) {
      if (value.name === valueName) return value.value;
    }
  }
  throw lookupError(`enum ${typeof enumName === "number" ? btf.describe(enumName) : enumName} has no value "${valueName}"`, ids[0]);
}

/** Find an enumerator by name in any enum (named or anonymous). */
export function findEnumValue(btf: Btf, valueName: string): { enumId: number; value: number | bigint } | undefined {
  expectBtf("find BTF enum value", btf);
  expectString("find BTF enum value", "valueName", valueName);
  for (let id = 1; id < btf.typeCount; id++) {
    const kind = btf.kindOf(id);
    if (kind !== "enum" && kind !== "enum64") continue;
    const type = btf.type(id) as { values: { name: string; value: number | bigint }[] };
    for (const value of type.values) if (value.name === valueName) return { enumId: id, value: value.value };
  }
  return undefined;
}
