import { Btf, btfMagic } from "./btf.js";
import { BtfFormatError } from "./btf-format-error.js";
import { expectBtf } from "./expect-btf.js";
import { expectIterable, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";
import {
  btfKindByNumber,
  BtfKindNumber,
  functionLinkageNumber,
  variableLinkageNumber,
  type BtfEncodableType,
  type BtfMember,
} from "./btf-types.js";

export interface BtfEncodeOptions {
  byteOrder?: "little" | "big";
}

const headerLength = 24;

function invalid(message: string, typeId: number): BtfFormatError {
  return new BtfFormatError(message, { typeId }, "build BTF", "fix the type passed to BtfBuilder.add");
}

const encodableKinds = btfKindByNumber.filter((kind) => kind !== "void");

/** A type's kind and name; the fields of each kind are checked when encoding. */
function checkType(type: unknown, id: number): BtfEncodableType {
  const { kind, name } = expectObject<{ kind?: unknown; name?: unknown }>("build BTF", "type", type);
  if (kind === "void") throw invalid("void (id 0) is implicit and cannot be added", id);
  expectOneOf("build BTF", "type.kind", kind, encodableKinds);
  expectString("build BTF", "type.name", name);
  return type as BtfEncodableType;
}

function checkEncodeOptions(options: unknown): BtfEncodeOptions {
  const checked = expectObject<BtfEncodeOptions>("encode BTF", "options", options, true);
  if (checked.byteOrder !== undefined) expectOneOf("encode BTF", "options.byteOrder", checked.byteOrder, ["little", "big"]);
  return checked;
}

/**
 * Builds a BTF blob from types: `add` returns each type's id, `encode` gives the
 * bytes for BPF_BTF_LOAD. Strings are deduplicated. With a base, builds split BTF
 * whose ids and string offsets continue after the base's.
 */
export class BtfBuilder {
  readonly base: Btf | undefined;
  private readonly types: BtfEncodableType[] = [];
  private readonly stringOffsets = new Map<string, number>();
  private readonly stringChunks: Buffer[] = [];
  private stringLength = 0;
  private readonly stringOffsetBase: number;
  readonly firstTypeId: number;

  constructor(options: { base?: Btf } = {}) {
    const { base } = expectObject<{ base?: Btf }>("build BTF", "options", options, true);
    this.base = base === undefined ? undefined : expectBtf("build BTF", base, "options.base");
    this.firstTypeId = this.base ? this.base.typeCount : 1;
    this.stringOffsetBase = this.base ? this.base.stringsLength : 0;
    if (this.base) this.stringOffsets.set("", 0);
    else this.addString("");
  }

  /** Copy every type of a parsed blob (not its base) into a new builder. */
  static from(btf: Btf): BtfBuilder {
    expectBtf("copy BTF into a builder", btf);
    const builder = new BtfBuilder({ base: btf.base });
    // Types decoded from a parsed blob are well formed: no need to check each one.
    for (const [, type] of btf.entries()) builder.types.push(type as BtfEncodableType);
    return builder;
  }

  /** The id the next added type gets. */
  get nextTypeId(): number {
    return this.firstTypeId + this.types.length;
  }

  /** Add a type; returns its id. References to ids not yet added are allowed (checked on encode). */
  add(type: BtfEncodableType): number {
    this.types.push(checkType(type, this.nextTypeId));
    return this.nextTypeId - 1;
  }

  /** The type added with this id. */
  type(id: number): BtfEncodableType {
    const type = this.types[id - this.firstTypeId];
    if (!type) throw invalid(`no type with id ${id} was added`, id);
    return type;
  }

  /** Replace the type with this id. */
  replace(id: number, type: BtfEncodableType): void {
    this.type(id);
    this.types[id - this.firstTypeId] = checkType(type, id);
  }

  /** Intern a string; returns its offset in the string section. */
  addString(value: string): number {
    expectString("build BTF", "value", value);
    const existing = this.stringOffsets.get(value);
    if (existing !== undefined) return existing;
    if (value.includes("\0")) throw new BtfFormatError(`string ${JSON.stringify(value)} contains a NUL byte`, {}, "build BTF");
    const inBase = this.base?.findString(value);
    if (inBase !== undefined) {
      // split BTF reuses the base's strings, as libbpf does
      this.stringOffsets.set(value, inBase);
      return inBase;
    }
    const bytes = Buffer.from(value + "\0", "latin1");
    const offset = this.stringOffsetBase + this.stringLength;
    this.stringChunks.push(bytes);
    this.stringLength += bytes.length;
    this.stringOffsets.set(value, offset);
    return offset;
  }

  /** Encode to a BTF blob. */
  encode(options: BtfEncodeOptions = {}): Uint8Array {
    checkEncodeOptions(options);
    const littleEndian = (options.byteOrder ?? "little") === "little";
    const typeCount = this.nextTypeId;
    const words: number[] = [];
    const reference = (value: number, id: number, what: string): number => {
      if (!Number.isInteger(value) || value < 0 || value >= typeCount) {
        throw invalid(`${what} refers to type id ${value}, which does not exist (ids are 0..${typeCount - 1})`, id);
      }
      return value;
    };
    const u32 = (value: number, id: number, what: string): number => {
      if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw invalid(`${what} ${value} is not a 32-bit unsigned integer`, id);
      return value;
    };
    const vlen = (count: number, id: number): number => {
      if (count > 0xffff) throw invalid(`${count} entries exceed the limit of 65535`, id);
      return count;
    };
    const info = (kind: number, count: number, kindFlag: boolean): number => ((kindFlag ? 0x80000000 : 0) | (kind << 24) | count) >>> 0;
    for (let index = 0; index < this.types.length; index++) {
      const id = this.firstTypeId + index;
      const type = this.types[index]!;
      const name = this.addString(type.name);
      const kind = BtfKindNumber[type.kind];
      switch (type.kind) {
        case "int": {
          const flags = (type.signed ? 1 : 0) | (type.char ? 2 : 0) | (type.bool ? 4 : 0);
          if (type.bits < 0 || type.bits > 255 || type.bitOffset < 0 || type.bitOffset > 255) throw invalid("INT bits or bit offset out of range", id);
          words.push(name, info(kind, 0, false), u32(type.size, id, "size"), ((flags << 24) | (type.bitOffset << 16) | type.bits) >>> 0);
          break;
        }
        case "pointer": case "typedef": case "volatile": case "const": case "restrict":
          words.push(name, info(kind, 0, false), reference(type.type, id, "type"));
          break;
        case "typeTag":
          words.push(name, info(kind, 0, type.attribute), reference(type.type, id, "type"));
          break;
        case "array":
          words.push(name, info(kind, 0, false), 0, reference(type.type, id, "element type"), reference(type.indexType, id, "index type"), u32(type.length, id, "length"));
          break;
        case "struct": case "union": {
          const kindFlag = type.kindFlag || type.members.some((member) => member.bitfieldSize !== 0);
          words.push(name, info(kind, vlen(type.members.length, id), kindFlag), u32(type.size, id, "size"));
          for (const member of type.members) words.push(this.addString(member.name), reference(member.type, id, `member ${member.name}`), memberOffset(member, kindFlag, id));
          break;
        }
        case "enum":
          words.push(name, info(kind, vlen(type.values.length, id), type.signed), u32(type.size, id, "size"));
          for (const value of type.values) {
            if (!Number.isInteger(value.value) || value.value < -0x80000000 || value.value > 0xffffffff) throw invalid(`enum value ${value.name} = ${value.value} does not fit in 32 bits`, id);
            words.push(this.addString(value.name), value.value >>> 0);
          }
          break;
        case "enum64":
          words.push(name, info(kind, vlen(type.values.length, id), type.signed), u32(type.size, id, "size"));
          for (const value of type.values) {
            const unsigned = BigInt.asUintN(64, value.value);
            words.push(this.addString(value.name), Number(unsigned & 0xffffffffn), Number(unsigned >> 32n));
          }
          break;
        case "forward":
          words.push(name, info(kind, 0, type.union), 0);
          break;
        case "function":
          words.push(name, info(kind, functionLinkageNumber[type.linkage], false), reference(type.type, id, "prototype"));
          break;
        case "functionProto":
          words.push(name, info(kind, vlen(type.parameters.length, id), false), reference(type.returnType, id, "return type"));
          for (const parameter of type.parameters) words.push(this.addString(parameter.name), reference(parameter.type, id, `parameter ${parameter.name}`));
          break;
        case "variable":
          words.push(name, info(kind, 0, false), reference(type.type, id, "type"), variableLinkageNumber[type.linkage]);
          break;
        case "dataSection":
          words.push(name, info(kind, vlen(type.variables.length, id), false), u32(type.size, id, "size"));
          for (const variable of type.variables) {
            words.push(reference(variable.type, id, "variable"), u32(variable.offset, id, "variable offset"), u32(variable.size, id, "variable size"));
          }
          break;
        case "float":
          words.push(name, info(kind, 0, false), u32(type.size, id, "size"));
          break;
        case "declTag":
          words.push(name, info(kind, 0, type.attribute), reference(type.type, id, "type"), type.componentIndex >>> 0);
          break;
        default:
          throw invalid(`unknown kind ${(type as { kind: string }).kind}`, id);
      }
    }
    const typeLength = words.length * 4;
    const total = headerLength + typeLength + this.stringLength;
    const bytes = new Uint8Array(total);
    const view = new DataView(bytes.buffer);
    view.setUint16(0, btfMagic, littleEndian);
    bytes[2] = 1;
    view.setUint32(4, headerLength, littleEndian);
    view.setUint32(8, 0, littleEndian);
    view.setUint32(12, typeLength, littleEndian);
    view.setUint32(16, typeLength, littleEndian);
    view.setUint32(20, this.stringLength, littleEndian);
    for (let index = 0; index < words.length; index++) view.setUint32(headerLength + index * 4, words[index]!, littleEndian);
    let position = headerLength + typeLength;
    for (const chunk of this.stringChunks) {
      bytes.set(chunk, position);
      position += chunk.length;
    }
    return bytes;
  }

  /** Encode and parse back: a Btf with the added types. */
  build(options: BtfEncodeOptions = {}): Btf {
    return Btf.parse(this.encode(options), { base: this.base });
  }
}

function memberOffset(member: BtfMember, kindFlag: boolean, id: number): number {
  if (!kindFlag) {
    if (member.bitfieldSize !== 0) throw invalid(`member ${member.name} is a bitfield but the struct has no kind flag`, id);
    if (!Number.isInteger(member.bitOffset) || member.bitOffset < 0 || member.bitOffset > 0xffffffff) throw invalid(`member ${member.name} bit offset ${member.bitOffset} out of range`, id);
    return member.bitOffset;
  }
  if (member.bitOffset < 0 || member.bitOffset > 0xffffff || !Number.isInteger(member.bitOffset)) {
    throw invalid(`member ${member.name} bit offset ${member.bitOffset} does not fit in 24 bits`, id);
  }
  if (member.bitfieldSize < 0 || member.bitfieldSize > 255) throw invalid(`member ${member.name} bitfield size ${member.bitfieldSize} out of range`, id);
  return ((member.bitfieldSize << 24) | member.bitOffset) >>> 0;
}

/** Encode a list of types (ids 1, 2, ... in order) to a BTF blob. */
export function encodeBtf(types: readonly BtfEncodableType[], options: BtfEncodeOptions & { base?: Btf } = {}): Uint8Array {
  expectIterable("encode BTF", "types", types);
  checkEncodeOptions(options);
  const builder = new BtfBuilder({ base: options.base });
  for (const type of types) builder.add(expectObject("encode BTF", "types[]", type));
  return builder.encode(options);
}
