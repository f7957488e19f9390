import type { Btf } from "./btf.js";
import { BtfFormatError } from "./btf-format-error.js";
import { BtfLookupError, sizeOf, skipQualifiers } from "./btf-query.js";
import { btfKindKernelName, isCompositeKind, isEnumKind, type BtfKind, type BtfMember } from "./btf-types.js";
import { NetbpfError } from "../sys/errors.js";
import { expectBtf, expectBtfType } from "./expect-btf.js";
import { expectInteger, expectObject, expectString } from "../sys/argument-checks.js";

/** CO-RE relocation kinds (enum bpf_core_relo_kind). */
export const CoreRelocationKind = {
  fieldByteOffset: 0,
  fieldByteSize: 1,
  fieldExists: 2,
  fieldSigned: 3,
  fieldLeftShiftU64: 4,
  fieldRightShiftU64: 5,
  typeIdLocal: 6,
  typeIdTarget: 7,
  typeExists: 8,
  typeSize: 9,
  enumValueExists: 10,
  enumValueValue: 11,
  typeMatches: 12,
} as const;
export type CoreRelocationKindNumber = (typeof CoreRelocationKind)[keyof typeof CoreRelocationKind];

const kindNames = ["byte_off", "byte_sz", "field_exists", "signed", "lshift_u64", "rshift_u64", "local_type_id", "target_type_id", "type_exists", "type_size", "enumval_exists", "enumval_value", "type_matches"];

/** Deepest access string libbpf accepts (BPF_CORE_SPEC_MAX_LEN). */
const maximumSpecLength = 64;
const maximumRecursion = 32;
/** Type comparison steps one relocation may take; stops pathological (exponential) BTF. */
const workLimit = 1_000_000;
let workLeft = workLimit;

function spend(): void {
  if (--workLeft < 0) throw new CoreRelocationError(`comparing types took more than ${workLimit} steps`, "the BTF is malformed or pathological");
}

/** One CO-RE relocation record (struct bpf_core_relo), with the access string already read from the local BTF. */
export interface CoreRelocation {
  /** Byte offset of the instruction in its section (informational). */
  instructionOffset?: number;
  /** Root type in the local BTF. */
  typeId: number;
  /** Access string such as "0:1:2". */
  accessString: string;
  kind: number;
}

/** The outcome of resolving one relocation against target BTF. */
export interface CoreRelocationResult {
  /** The instruction must be poisoned (no match, and the kind needs one). */
  poison: boolean;
  /** Why it is poisoned, naming the type and field. */
  reason: string | undefined;
  /** Value computed from the local BTF (what clang put in the instruction). */
  localValue: bigint;
  /** Value to patch in. */
  targetValue: bigint;
  /** Whether the instruction's current value must equal localValue before patching. */
  validate: boolean;
  /** Memory access size from the local field (load/store relocations), 0 when not applicable. */
  localSize: number;
  /** Memory access size of the target field. */
  targetSize: number;
  /** Sizes differ in a way a load/store cannot be adjusted for; such loads/stores get poisoned. */
  failMemorySizeAdjust: boolean;
  /** Matching target type (root) and the BTF it was found in. */
  target: { btf: Btf; typeId: number } | undefined;
  /** Human-readable local spec, e.g. "struct sk_buff.cb[2] (0:3:2 @ offset 42)". */
  localSpec: string;
  /** Human-readable target spec when matched. */
  targetSpec: string | undefined;
}

/** A relocation that cannot be resolved at all (malformed record, ambiguous candidates): the load must fail. */
export class CoreRelocationError extends NetbpfError {
  constructor(message: string, hint?: string) {
    super("CO-RE relocation", message, hint);
  }
}

interface Accessor {
  typeId: number;
  index: number;
  name: string | undefined;
}

interface Spec {
  btf: Btf;
  rootTypeId: number;
  kind: number;
  raw: number[];
  accessors: Accessor[];
  bitOffset: number;
}

function isFieldBased(kind: number): boolean {
  return kind >= 0 && kind <= 5;
}
function isTypeBased(kind: number): boolean {
  return (kind >= 6 && kind <= 9) || kind === 12;
}
function isEnumValueBased(kind: number): boolean {
  return kind === 10 || kind === 11;
}

export function coreRelocationKindName(kind: number): string {
  expectInteger("name CO-RE relocation kind", "kind", kind);
  return kindNames[kind] ?? `unknown kind ${kind}`;
}

/** Length of a name without its "___flavor" suffix (libbpf's bpf_core_essential_name_len). */
export function essentialNameLength(name: string): number {
  expectString("essential name", "name", name);
  for (let index = name.length - 5; index >= 0; index--) {
    if (name[index] !== "_" && name[index + 1] === "_" && name[index + 2] === "_" && name[index + 3] === "_" && name[index + 4] !== "_") return index + 1;
  }
  return name.length;
}

/** The name without its flavor suffix: "task_struct___v1" gives "task_struct". */
export function essentialName(name: string): string {
  const length = essentialNameLength(name);
  return name.slice(0, length);
}

function kindsCompatible(local: BtfKind, target: BtfKind): boolean {
  return local === target || (isEnumKind(local) && isEnumKind(target));
}

/** Skip qualifiers and typedefs; malformed chains count as "no type" (libbpf returns NULL there). */
function skip(btf: Btf, id: number): number | undefined {
  try {
    return skipQualifiers(btf, id);
  } catch (error) {
    if (error instanceof BtfFormatError) return undefined;
    throw error;
  }
}

function resolveSize(btf: Btf, id: number): number | undefined {
  try {
    return sizeOf(btf, id);
  } catch (error) {
    if (error instanceof BtfFormatError || error instanceof BtfLookupError) return undefined;
    throw error;
  }
}

function describeType(btf: Btf, id: number): string {
  const kind = btf.kindOf(id);
  const name = btf.nameOf(id);
  return `${btfKindKernelName[kind]} ${name === "" ? "(anon)" : name} [${id}]`;
}

function formatSpec(spec: Spec): string {
  const root = describeType(spec.btf, spec.rootTypeId);
  if (isTypeBased(spec.kind)) return root;
  if (isEnumValueBased(spec.kind)) {
    const accessor = spec.accessors[0];
    return accessor ? `${root}::${accessor.name}` : root;
  }
  let text = `${root} `;
  spec.accessors.forEach((accessor, index) => {
    if (accessor.name !== undefined) text += `.${accessor.name}`;
    else if (index > 0 || accessor.index > 0) text += `[${accessor.index}]`;
  });
  const offset = spec.bitOffset % 8 ? `${Math.floor(spec.bitOffset / 8)}.${spec.bitOffset % 8}` : `${spec.bitOffset / 8}`;
  return `${text} (${spec.raw.join(":")} @ offset ${offset})`;
}

function isFlexibleArray(btf: Btf, parent: Accessor | undefined, length: number): boolean {
  if (!parent || parent.name === undefined || length > 0) return false;
  const type = btf.type(parent.typeId);
  return isCompositeKind(type.kind) && parent.index === (type as { members: BtfMember[] }).members.length - 1;
}

function parseSpec(btf: Btf, relocation: CoreRelocation): Spec {
  const fail = (why: string): never => {
    throw new CoreRelocationError(
      `${coreRelocationKindName(relocation.kind)} relocation for ${btf.has(relocation.typeId) ? describeType(btf, relocation.typeId) : `missing type [${relocation.typeId}]`} with access string "${relocation.accessString}": ${why}`,
      "the object's BTF or .BTF.ext is malformed",
    );
  };
  if (!btf.has(relocation.typeId) || relocation.typeId === 0) fail("root type does not exist");
  const spec: Spec = { btf, rootTypeId: relocation.typeId, kind: relocation.kind, raw: [], accessors: [], bitOffset: 0 };
  const text = relocation.accessString;
  if (text === "" || text.startsWith(":")) fail("empty access string");
  if (isTypeBased(relocation.kind)) {
    if (text !== "0") fail('type relocations need the access string "0"');
    return spec;
  }
  if (!isFieldBased(relocation.kind) && !isEnumValueBased(relocation.kind)) fail("unknown relocation kind");
  for (const part of text.split(":")) {
    if (!/^\d+$/.test(part)) fail(`"${part}" is not an index`);
    if (spec.raw.length === maximumSpecLength) fail(`more than ${maximumSpecLength} accessors`);
    spec.raw.push(Number(part));
  }
  let id = skip(btf, relocation.typeId);
  if (id === undefined) return fail("root type chain is malformed");
  const first = spec.raw[0]!;
  spec.accessors.push({ typeId: id, index: first, name: undefined });
  if (isEnumValueBased(relocation.kind)) {
    const type = btf.type(id);
    if (!isEnumKind(type.kind) || spec.raw.length > 1) fail("enum value relocations need an enum and a single index");
    const values = (type as { values: { name: string }[] }).values;
    if (first >= values.length) fail(`enumerator index ${first} is out of range (${values.length} values)`);
    spec.accessors[0]!.name = values[first]!.name;
    return spec;
  }
  const rootSize = resolveSize(btf, id);
  if (rootSize === undefined) fail("root type has no size");
  spec.bitOffset = first * rootSize! * 8;
  for (let step = 1; step < spec.raw.length; step++) {
    const index = spec.raw[step]!;
    const currentId: number | undefined = skip(btf, id);
    if (currentId === undefined) return fail("type chain is malformed");
    const type = btf.type(currentId);
    if (type.kind === "struct" || type.kind === "union") {
      if (index >= type.members.length) fail(`member index ${index} is out of range for ${describeType(btf, currentId)} (${type.members.length} members)`);
      const member = type.members[index]!;
      spec.bitOffset += member.bitOffset;
      if (member.name !== "") spec.accessors.push({ typeId: currentId, index, name: member.name });
      id = member.type;
    } else if (type.kind === "array") {
      const element = skip(btf, type.type);
      if (element === undefined) return fail("array element type chain is malformed");
      const flexible = isFlexibleArray(btf, spec.accessors[spec.accessors.length - 1], type.length);
      if (!flexible && index >= type.length) fail(`index ${index} is out of bounds of ${describeType(btf, currentId)} (length ${type.length})`);
      spec.accessors.push({ typeId: element, index, name: undefined });
      const elementSize = resolveSize(btf, element);
      if (elementSize === undefined) fail("array element has no size");
      spec.bitOffset += index * elementSize! * 8;
      id = element;
    } else {
      fail(`accessor ${step} reaches ${describeType(btf, currentId)}, which is neither struct, union nor array`);
    }
  }
  return spec;
}

/** Field compatibility for field relocations (libbpf's bpf_core_fields_are_compat). */
function fieldsCompatible(local: Btf, localId: number, target: Btf, targetId: number): boolean {
  for (let depth = 0; depth < maximumRecursion; depth++) {
    spend();
    const l = skip(local, localId);
    const t = skip(target, targetId);
    if (l === undefined || t === undefined) throw new CoreRelocationError("malformed type chain while comparing fields");
    const localType = local.type(l);
    const targetType = target.type(t);
    if (isCompositeKind(localType.kind) && isCompositeKind(targetType.kind)) return true;
    if (!kindsCompatible(localType.kind, targetType.kind)) return false;
    switch (localType.kind) {
      case "pointer": case "float":
        return true;
      case "forward": case "enum": case "enum64": {
        const localLength = essentialNameLength(localType.name);
        const targetLength = essentialNameLength(targetType.name);
        return localLength === 0 || targetLength === 0 || (localLength === targetLength && localType.name.slice(0, localLength) === targetType.name.slice(0, targetLength));
      }
      case "int":
        return localType.bitOffset === 0 && (targetType as { bitOffset: number }).bitOffset === 0;
      case "array":
        localId = localType.type;
        targetId = (targetType as { type: number }).type;
        continue;
      default:
        return false;
    }
  }
  throw new CoreRelocationError("types nest too deeply while comparing fields");
}

/** Type compatibility for type-based relocations (libbpf's bpf_core_types_are_compat). */
export function coreTypesCompatible(local: Btf, localId: number, target: Btf, targetId: number): boolean {
  expectBtfType("compare CO-RE types", local, localId, "local", "localId");
  expectBtfType("compare CO-RE types", target, targetId, "target", "targetId");
  workLeft = workLimit;
  return typesCompatible(local, localId, target, targetId, maximumRecursion);
}

function typesCompatible(local: Btf, localId: number, target: Btf, targetId: number, level: number): boolean {
  if (!kindsCompatible(local.kindOf(localId), target.kindOf(targetId))) return false;
  for (let depth = 0; depth < maximumRecursion; depth++) {
    spend();
    const l = skip(local, localId);
    const t = skip(target, targetId);
    if (l === undefined || t === undefined) throw new CoreRelocationError("malformed type chain while comparing types");
    const localType = local.type(l);
    const targetType = target.type(t);
    if (!kindsCompatible(localType.kind, targetType.kind)) return false;
    switch (localType.kind) {
      case "void": case "struct": case "union": case "enum": case "enum64": case "forward":
        return true;
      case "int":
        return localType.bitOffset === 0 && (targetType as { bitOffset: number }).bitOffset === 0;
      case "pointer":
        localId = localType.type;
        targetId = (targetType as { type: number }).type;
        continue;
      case "array":
        localId = localType.type;
        targetId = (targetType as { type: number }).type;
        continue;
      case "functionProto": {
        const targetProto = targetType as typeof localType;
        if (localType.parameters.length !== targetProto.parameters.length) return false;
        for (let index = 0; index < localType.parameters.length; index++) {
          if (level <= 0) throw new CoreRelocationError("function prototypes nest too deeply");
          if (!typesCompatible(local, skip(local, localType.parameters[index]!.type) ?? 0, target, skip(target, targetProto.parameters[index]!.type) ?? 0, level - 1)) return false;
        }
        localId = localType.returnType;
        targetId = targetProto.returnType;
        continue;
      }
      default:
        return false;
    }
  }
  throw new CoreRelocationError("types nest too deeply while comparing types");
}

function namesMatch(localName: string, targetName: string): boolean {
  if (targetName === "") return localName === "";
  const localLength = essentialNameLength(localName);
  return essentialNameLength(targetName) === localLength && localName.slice(0, localLength) === targetName.slice(0, localLength);
}

function enumsMatch(local: Btf, localId: number, target: Btf, targetId: number): boolean {
  const localType = local.type(localId) as { size: number; values: { name: string }[] };
  const targetType = target.type(targetId) as { size: number; values: { name: string }[] };
  if (localType.size !== targetType.size || localType.values.length > targetType.values.length) return false;
  return localType.values.every((value) => targetType.values.some((candidate) => namesMatch(value.name, candidate.name)));
}

/** Type "match" relation for TYPE_MATCHES (libbpf's __bpf_core_types_match). */
export function coreTypesMatch(local: Btf, localId: number, target: Btf, targetId: number): boolean {
  expectBtfType("match CO-RE types", local, localId, "local", "localId");
  expectBtfType("match CO-RE types", target, targetId, "target", "targetId");
  workLeft = workLimit;
  return typesMatch(local, localId, target, targetId, false, maximumRecursion);
}

function typesMatch(local: Btf, localId: number, target: Btf, targetId: number, behindPointer: boolean, level: number): boolean {
  if (level <= 0) throw new CoreRelocationError("types nest too deeply while matching types");
  for (let depth = 0; depth < maximumRecursion; depth++) {
    spend();
    const l = skip(local, localId);
    const t = skip(target, targetId);
    if (l === undefined || t === undefined) throw new CoreRelocationError("malformed type chain while matching types");
    const localType = local.type(l);
    const targetType = target.type(t);
    if (!namesMatch(localType.name, targetType.name)) return false;
    switch (localType.kind) {
      case "void":
        return targetType.kind === "void";
      case "forward": {
        if (behindPointer && targetType.kind !== "forward") {
          return (targetType.kind === "struct" && !localType.union) || (targetType.kind === "union" && localType.union);
        }
        return targetType.kind === "forward" && targetType.union === localType.union;
      }
      case "enum": case "enum64":
        return isEnumKind(targetType.kind) && enumsMatch(local, l, target, t);
      case "struct": case "union": {
        if (behindPointer) {
          if (targetType.kind === localType.kind) return true;
          return targetType.kind === "forward" && targetType.union === (localType.kind === "union");
        }
        if (targetType.kind !== localType.kind) return false;
        const targetMembers = targetType.members;
        if (localType.members.length > targetMembers.length) return false;
        return localType.members.every((member) =>
          targetMembers.some((candidate) => namesMatch(member.name, candidate.name) && typesMatch(local, member.type, target, candidate.type, behindPointer, level - 1)),
        );
      }
      case "int":
        return targetType.kind === "int" && localType.size === targetType.size && localType.signed === targetType.signed;
      case "pointer":
        if (targetType.kind !== "pointer") return false;
        behindPointer = true;
        localId = localType.type;
        targetId = targetType.type;
        continue;
      case "array":
        if (targetType.kind !== "array" || localType.length !== targetType.length) return false;
        localId = localType.type;
        targetId = targetType.type;
        continue;
      case "functionProto": {
        if (targetType.kind !== "functionProto" || localType.parameters.length !== targetType.parameters.length) return false;
        for (let index = 0; index < localType.parameters.length; index++) {
          if (!typesMatch(local, localType.parameters[index]!.type, target, targetType.parameters[index]!.type, behindPointer, level - 1)) return false;
        }
        localId = localType.returnType;
        targetId = targetType.returnType;
        continue;
      }
      default:
        return false;
    }
  }
  throw new CoreRelocationError("types nest too deeply while matching types");
}

/** Find the target member matching a local named accessor, through anonymous members; extends `spec`. */
function matchMember(local: Btf, localAccessor: Accessor, target: Btf, targetId: number, spec: Spec): { found: boolean; nextTargetId: number } {
  const structId = skip(target, targetId);
  if (structId === undefined) throw new CoreRelocationError("malformed target type chain");
  const targetType = target.type(structId);
  if (targetType.kind !== "struct" && targetType.kind !== "union") return { found: false, nextTargetId: 0 };
  const localMember = (local.type(localAccessor.typeId) as { members: BtfMember[] }).members[localAccessor.index]!;
  for (let index = 0; index < targetType.members.length; index++) {
    spend();
    const member = targetType.members[index]!;
    if (spec.raw.length === maximumSpecLength) throw new CoreRelocationError(`struct/union nesting deeper than ${maximumSpecLength} in ${describeType(target, structId)}`);
    spec.bitOffset += member.bitOffset;
    spec.raw.push(index);
    if (member.name === "") {
      const inner = matchMember(local, localAccessor, target, member.type, spec);
      if (inner.found) return inner;
    } else if (member.name === localMember.name) {
      spec.accessors.push({ typeId: structId, index, name: member.name });
      if (fieldsCompatible(local, localMember.type, target, member.type)) return { found: true, nextTargetId: member.type };
      spec.accessors.pop();
      spec.bitOffset -= member.bitOffset;
      spec.raw.pop();
      return { found: false, nextTargetId: 0 };
    }
    spec.bitOffset -= member.bitOffset;
    spec.raw.pop();
  }
  return { found: false, nextTargetId: 0 };
}

/** Match a local spec against one candidate; undefined when it does not match. */
function matchSpec(localSpec: Spec, target: Btf, targetRootId: number): Spec | undefined {
  const spec: Spec = { btf: target, rootTypeId: targetRootId, kind: localSpec.kind, raw: [], accessors: [], bitOffset: 0 };
  if (isTypeBased(localSpec.kind)) {
    const matched = localSpec.kind === CoreRelocationKind.typeMatches
      ? typesMatch(localSpec.btf, localSpec.rootTypeId, target, targetRootId, false, maximumRecursion)
      : typesCompatible(localSpec.btf, localSpec.rootTypeId, target, targetRootId, maximumRecursion);
    return matched ? spec : undefined;
  }
  const first = localSpec.accessors[0]!;
  if (isEnumValueBased(localSpec.kind)) {
    const enumId = skip(target, targetRootId);
    if (enumId === undefined) return undefined;
    const type = target.type(enumId);
    if (!isEnumKind(type.kind)) return undefined;
    const wanted = first.name!;
    const wantedLength = essentialNameLength(wanted);
    const values = (type as { values: { name: string }[] }).values;
    for (let index = 0; index < values.length; index++) {
      const name = values[index]!.name;
      if (essentialNameLength(name) === wantedLength && name.slice(0, wantedLength) === wanted.slice(0, wantedLength)) {
        spec.accessors.push({ typeId: enumId, index, name });
        spec.raw.push(index);
        return spec;
      }
    }
    return undefined;
  }
  let targetId = targetRootId;
  for (let step = 0; step < localSpec.accessors.length; step++) {
    const localAccessor = localSpec.accessors[step]!;
    const current = skip(target, targetId);
    if (current === undefined) throw new CoreRelocationError("malformed target type chain");
    targetId = current;
    if (localAccessor.name !== undefined) {
      const matched = matchMember(localSpec.btf, localAccessor, target, targetId, spec);
      if (!matched.found) return undefined;
      targetId = matched.nextTargetId;
      continue;
    }
    if (step > 0) {
      const array = target.type(targetId);
      if (array.kind !== "array") return undefined;
      const flexible = isFlexibleArray(target, spec.accessors[spec.accessors.length - 1], array.length);
      if (!flexible && localAccessor.index >= array.length) return undefined;
      const element = skip(target, array.type);
      if (element === undefined) throw new CoreRelocationError("malformed target array element type");
      targetId = element;
    }
    if (spec.raw.length === maximumSpecLength) throw new CoreRelocationError(`access nesting deeper than ${maximumSpecLength}`);
    spec.accessors.push({ typeId: targetId, index: localAccessor.index, name: undefined });
    spec.raw.push(localAccessor.index);
    const size = resolveSize(target, targetId);
    if (size === undefined) throw new CoreRelocationError(`${describeType(target, targetId)} has no size`);
    spec.bitOffset += localAccessor.index * size * 8;
  }
  return spec;
}

interface Calculated {
  value: bigint;
  size: number;
  typeId: number;
  validate: boolean;
  poison: boolean;
}

function calculateField(relocation: CoreRelocation, spec: Spec | undefined): Calculated {
  const result: Calculated = { value: 0n, size: 0, typeId: 0, validate: true, poison: false };
  if (relocation.kind === CoreRelocationKind.fieldExists) {
    result.value = spec ? 1n : 0n;
    return result;
  }
  if (!spec) return { ...result, poison: true };
  const accessor = spec.accessors[spec.accessors.length - 1]!;
  if (accessor.name === undefined) {
    const size = resolveSize(spec.btf, accessor.typeId);
    if (size === undefined) throw new CoreRelocationError(`${describeType(spec.btf, accessor.typeId)} has no size`);
    if (relocation.kind === CoreRelocationKind.fieldByteOffset) {
      result.value = BigInt(Math.floor(spec.bitOffset / 8));
      result.size = size;
      result.typeId = accessor.typeId;
    } else if (relocation.kind === CoreRelocationKind.fieldByteSize) {
      result.value = BigInt(size);
    } else {
      throw new CoreRelocationError(`${coreRelocationKindName(relocation.kind)} cannot be applied to an array element access (${formatSpec(spec)})`);
    }
    return result;
  }
  const parent = spec.btf.type(accessor.typeId) as { members: BtfMember[] };
  const member = parent.members[accessor.index]!;
  const fieldTypeId = skip(spec.btf, member.type);
  if (fieldTypeId === undefined) throw new CoreRelocationError("malformed field type chain");
  const fieldType = spec.btf.type(fieldTypeId);
  const bitOffset = spec.bitOffset;
  let bitSize = member.bitfieldSize;
  const bitfield = bitSize > 0;
  let byteSize: number;
  let byteOffset: number;
  if (bitfield) {
    byteSize = (fieldType as { size?: number }).size ?? 0;
    if (byteSize <= 0) throw new CoreRelocationError(`bitfield ${accessor.name} has a type without size (${formatSpec(spec)})`);
    byteOffset = Math.floor(bitOffset / 8 / byteSize) * byteSize;
    while (bitOffset + bitSize - byteOffset * 8 > byteSize * 8) {
      if (byteSize >= 8) throw new CoreRelocationError(`bitfield ${accessor.name} cannot be read with a 64-bit load (${formatSpec(spec)})`);
      byteSize *= 2;
      byteOffset = Math.floor(bitOffset / 8 / byteSize) * byteSize;
    }
  } else {
    const size = resolveSize(spec.btf, fieldTypeId);
    if (size === undefined) throw new CoreRelocationError(`field ${accessor.name} has a type without size (${formatSpec(spec)})`);
    byteSize = size;
    byteOffset = Math.floor(bitOffset / 8);
    bitSize = byteSize * 8;
  }
  result.validate = !bitfield;
  switch (relocation.kind) {
    case CoreRelocationKind.fieldByteOffset:
      result.value = BigInt(byteOffset);
      if (!bitfield) {
        result.size = byteSize;
        result.typeId = fieldTypeId;
      }
      break;
    case CoreRelocationKind.fieldByteSize:
      result.value = BigInt(byteSize);
      break;
    case CoreRelocationKind.fieldSigned:
      result.value = (isEnumKind(fieldType.kind) && (fieldType as { signed: boolean }).signed) || (fieldType.kind === "int" && fieldType.signed) ? 1n : 0n;
      result.validate = true;
      break;
    case CoreRelocationKind.fieldLeftShiftU64:
      result.value = BigInt(64 - (bitOffset + bitSize - byteOffset * 8));
      break;
    case CoreRelocationKind.fieldRightShiftU64:
      result.value = BigInt(64 - bitSize);
      result.validate = true;
      break;
    default:
      throw new CoreRelocationError(`unsupported relocation kind ${relocation.kind}`);
  }
  return result;
}

function calculateType(relocation: CoreRelocation, spec: Spec | undefined): Calculated {
  const result: Calculated = { value: 0n, size: 0, typeId: 0, validate: true, poison: false };
  if (!spec) return result;
  switch (relocation.kind) {
    case CoreRelocationKind.typeIdTarget:
      result.value = BigInt(spec.rootTypeId);
      result.validate = false;
      break;
    case CoreRelocationKind.typeExists:
    case CoreRelocationKind.typeMatches:
      result.value = 1n;
      break;
    case CoreRelocationKind.typeSize: {
      const size = resolveSize(spec.btf, spec.rootTypeId);
      if (size === undefined) throw new CoreRelocationError(`${describeType(spec.btf, spec.rootTypeId)} has no size`);
      result.value = BigInt(size);
      break;
    }
    default:
      throw new CoreRelocationError(`unsupported relocation kind ${relocation.kind}`);
  }
  return result;
}

function calculateEnumValue(relocation: CoreRelocation, spec: Spec | undefined): Calculated {
  const result: Calculated = { value: 0n, size: 0, typeId: 0, validate: true, poison: false };
  if (relocation.kind === CoreRelocationKind.enumValueExists) {
    result.value = spec ? 1n : 0n;
    return result;
  }
  if (!spec) return { ...result, poison: true };
  const accessor = spec.accessors[0]!;
  const type = spec.btf.type(accessor.typeId) as { kind: BtfKind; values: { value: number | bigint }[] };
  const value = type.values[accessor.index]!.value;
  // As in libbpf, a 32-bit enumerator is read as __s32 into a u64, so it is sign-extended.
  result.value = typeof value === "bigint" ? BigInt.asUintN(64, value) : BigInt.asUintN(64, BigInt(value | 0));
  return result;
}

function calculate(relocation: CoreRelocation, localSpec: Spec, targetSpec: Spec | undefined): CoreRelocationResult {
  const base = { localSpec: formatSpec(localSpec), targetSpec: targetSpec ? formatSpec(targetSpec) : undefined, target: targetSpec ? { btf: targetSpec.btf, typeId: targetSpec.rootTypeId } : undefined };
  const calculator = isFieldBased(relocation.kind) ? calculateField : isTypeBased(relocation.kind) ? calculateType : calculateEnumValue;
  const local = calculator(relocation, localSpec);
  const target = calculator(relocation, targetSpec);
  const poison = local.poison || target.poison;
  let failMemorySizeAdjust = false;
  if (isFieldBased(relocation.kind) && !poison && local.size !== target.size) {
    const localType = localSpec.btf.type(local.typeId);
    const targetType = targetSpec!.btf.type(target.typeId);
    const bothPointers = localType.kind === "pointer" && targetType.kind === "pointer";
    const bothUnsigned = localType.kind === "int" && targetType.kind === "int" && !localType.signed && !targetType.signed;
    failMemorySizeAdjust = !(bothPointers || bothUnsigned);
  }
  return {
    ...base,
    poison,
    reason: poison ? `${coreRelocationKindName(relocation.kind)}: ${formatSpec(localSpec)} has no match in the target BTF` : undefined,
    localValue: local.value,
    targetValue: target.value,
    validate: local.validate,
    localSize: local.size,
    targetSize: target.size,
    failMemorySizeAdjust,
  };
}

const essentialIndexes = new WeakMap<Btf, Map<string, number[]>>();

function essentialIndex(btf: Btf): Map<string, number[]> {
  let index = essentialIndexes.get(btf);
  if (index) return index;
  index = new Map();
  for (const [name, ids] of btf.names()) {
    const key = essentialName(name);
    const list = index.get(key);
    const add = typeof ids === "number" ? [ids] : ids;
    if (list) list.push(...add);
    else index.set(key, [...add]);
  }
  essentialIndexes.set(btf, index);
  return index;
}

/**
 * Candidate target types for a local type: same essential name and a compatible kind
 * (libbpf's candidate search). Targets are searched base first (vmlinux, then modules).
 */
export function findCoreCandidates(local: Btf, localTypeId: number, targets: Btf | readonly Btf[]): { btf: Btf; typeId: number }[] {
  expectBtfType("find CO-RE candidates", local, localTypeId, "local", "localTypeId");
  expectTargets("find CO-RE candidates", targets);
  return candidatesOf(local, localTypeId, targets);
}

function expectTargets(operation: string, targets: unknown): void {
  if (Array.isArray(targets)) targets.forEach((target, index) => expectBtf(operation, target, `targets[${index}]`));
  else expectBtf(operation, targets, "targets");
}

function candidatesOf(local: Btf, localTypeId: number, targets: Btf | readonly Btf[]): { btf: Btf; typeId: number }[] {
  const localName = local.nameOf(localTypeId);
  const localKind = local.kindOf(localTypeId);
  const wanted = essentialName(localName);
  const seen = new Set<Btf>();
  const order: Btf[] = [];
  const visit = (btf: Btf): void => {
    if (btf.base) visit(btf.base);
    if (!seen.has(btf)) {
      seen.add(btf);
      order.push(btf);
    }
  };
  for (const target of Array.isArray(targets) ? targets : [targets as Btf]) visit(target);
  // Like libbpf: the first (base-most, i.e. vmlinux) BTF wins if it has any candidate;
  // only otherwise are the others (modules) searched, all together.
  const candidates: { btf: Btf; typeId: number }[] = [];
  for (const [index, btf] of order.entries()) {
    if (index === 1 && candidates.length > 0) break;
    for (const id of essentialIndex(btf).get(wanted) ?? []) {
      if (kindsCompatible(localKind, btf.kindOf(id))) candidates.push({ btf, typeId: id });
    }
  }
  return candidates;
}

/**
 * Resolve one CO-RE relocation like libbpf: find candidates by essential name in
 * the target BTF(s), match the access spec against each, and compute the value
 * to patch in. A relocation with no match comes back with `poison: true` (for kinds
 * that need a match); malformed or ambiguous relocations throw CoreRelocationError.
 */
export function resolveCoreRelocation(local: Btf, relocation: CoreRelocation, targets: Btf | readonly Btf[]): CoreRelocationResult {
  const operation = "resolve CO-RE relocation";
  expectBtf(operation, local, "local");
  expectObject(operation, "relocation", relocation);
  // An id past the local BTF is malformed object data, reported by parseSpec as a CoreRelocationError.
  expectInteger(operation, "relocation.typeId", relocation.typeId, 0);
  expectString(operation, "relocation.accessString", relocation.accessString);
  expectInteger(operation, "relocation.kind", relocation.kind, 0);
  expectTargets(operation, targets);
  workLeft = workLimit;
  const localSpec = parseSpec(local, relocation);
  if (relocation.kind === CoreRelocationKind.typeIdLocal) {
    const id = BigInt(localSpec.rootTypeId);
    return {
      poison: false, reason: undefined, localValue: id, targetValue: id, validate: false, localSize: 0, targetSize: 0,
      failMemorySizeAdjust: false, target: undefined, localSpec: formatSpec(localSpec), targetSpec: undefined,
    };
  }
  const localName = local.nameOf(relocation.typeId);
  if (localName === "") {
    throw new CoreRelocationError(`${coreRelocationKindName(relocation.kind)} relocation of anonymous ${describeType(local, relocation.typeId)} is not supported`, "CO-RE relocations need a named root type");
  }
  let chosen: { result: CoreRelocationResult; spec: Spec } | undefined;
  const candidates = candidatesOf(local, relocation.typeId, targets);
  for (const candidate of candidates) {
    const targetSpec = matchSpec(localSpec, candidate.btf, candidate.typeId);
    if (!targetSpec) continue;
    const result = calculate(relocation, localSpec, targetSpec);
    if (!chosen) {
      chosen = { result, spec: targetSpec };
    } else if (targetSpec.bitOffset !== chosen.spec.bitOffset) {
      throw new CoreRelocationError(`field offset ambiguity for ${formatSpec(localSpec)}: ${formatSpec(targetSpec)} vs ${formatSpec(chosen.spec)}`);
    } else if (result.poison !== chosen.result.poison || result.targetValue !== chosen.result.targetValue) {
      throw new CoreRelocationError(`relocation decision ambiguity for ${formatSpec(localSpec)}: ${result.targetValue} (${formatSpec(targetSpec)}) vs ${chosen.result.targetValue} (${formatSpec(chosen.spec)})`);
    }
  }
  if (chosen) return chosen.result;
  const result = calculate(relocation, localSpec, undefined);
  if (result.poison) {
    const tried = candidates.length === 0 ? "no type with that name" : `candidates tried: ${candidates.map((c) => describeType(c.btf, c.typeId)).join(", ")}`;
    result.reason = `${coreRelocationKindName(relocation.kind)}: ${formatSpec(localSpec)} has no match in the target BTF (${tried})`;
  }
  return result;
}
