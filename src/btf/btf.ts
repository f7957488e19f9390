import { BtfFormatError } from "./btf-format-error.js";
import { formatCDefinition, formatCType, type CFormatOptions } from "./btf-c-format.js";
import {
  alignmentOf,
  BtfLookupError,
  enumValue,
  fieldLocation,
  fieldOffset,
  findMember,
  sizeOf,
  skipQualifiers,
  type FieldLocation,
  type MemberLocation,
} from "./btf-query.js";
import {
  btfKindByNumber,
  btfKindKernelName,
  voidType,
  type BtfDataSectionVariable,
  type BtfEnum64Value,
  type BtfEnumValue,
  type BtfFunctionLinkage,
  type BtfKind,
  type BtfMember,
  type BtfParameter,
  type BtfType,
  type BtfTypeOfKind,
  type BtfVariableLinkage,
} from "./btf-types.js";
import { argumentError, expectBytes, expectInteger, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";
import { expectBtf } from "./expect-btf.js";

export const btfMagic = 0xeb9f;
const headerMinimumLength = 24;
const typeHeaderLength = 12;
const maximumTypeId = 0x7fffffff;
/** Lookups by name answered by searching the string section before the full name index is built. */
const searchesBeforeFullIndex = 32;
/** Searches answered by scanning type headers before the index by name offset is built. */
const searchesBeforeOffsetIndex = 16;
const linkages: readonly (BtfFunctionLinkage & BtfVariableLinkage)[] = ["static", "global", "extern"];

export interface BtfParseOptions {
  /** Base BTF for split BTF (kernel module BTF is split BTF on top of vmlinux). */
  base?: Btf;
  /**
   * Check every name offset and type reference right away (default true). Off, malformed
   * references are still reported as BtfFormatError, but only when the type is used.
   */
  validate?: boolean;
}

/** Byte sizes of the part that follows the 12-byte common header, per kind number. */
function extraLength(kindNumber: number, vlen: number): number {
  switch (kindNumber) {
    case 1: // int
    case 14: // variable
    case 17: // declTag
      return 4;
    case 2: case 7: case 8: case 9: case 10: case 11: case 12: case 16: case 18:
      return 0;
    case 3: // array
      return 12;
    case 4: case 5: case 15: case 19: // struct, union, dataSection, enum64
      return 12 * vlen;
    case 6: case 13: // enum, functionProto
      return 8 * vlen;
    default:
      return -1;
  }
}

/**
 * A parsed BTF blob. Construction indexes where each type starts in one pass
 * over the bytes; types are decoded on demand and cached, and the name index is
 * built on the first lookup by name.
 */
export class Btf {
  /** The raw blob this was parsed from. */
  readonly bytes: Uint8Array;
  readonly byteOrder: "little" | "big";
  readonly base: Btf | undefined;
  /** The first type id this blob defines: 1, or the base's typeCount for split BTF. */
  readonly firstTypeId: number;
  /** One more than the highest type id (type ids are 0 for void, then 1 .. typeCount - 1). */
  readonly typeCount: number;
  /** Total length of the string space, including the base's strings for split BTF. */
  readonly stringsLength: number;

  private readonly view: DataView;
  private readonly buffer: Buffer;
  private readonly littleEndian: boolean;
  private readonly offsets: Uint32Array;
  private readonly stringsStart: number;
  private readonly stringsOwnLength: number;
  private readonly stringOffsetBase: number;
  private readonly decoded: (BtfType | undefined)[];
  private nameIndex: Map<string, number | number[]> | undefined;
  private stringText: string | undefined;
  private nameOffsets: Map<number, number | number[]> | undefined;
  private searchesByOffset = 0;
  private typeNames: Uint32Array | undefined;

  private constructor(bytes: Uint8Array, options: BtfParseOptions) {
    expectBytes("parse BTF", "bytes", bytes);
    expectObject("parse BTF", "options", options);
    const base = options.base === undefined ? undefined : expectBtf("parse BTF", options.base, "options.base");
    if (options.validate !== undefined && typeof options.validate !== "boolean") throw argumentError("parse BTF", "options.validate", "a boolean", options.validate);
    this.bytes = bytes;
    this.base = base;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.byteLength < headerMinimumLength) {
      throw new BtfFormatError(`blob of ${bytes.byteLength} bytes is shorter than the ${headerMinimumLength}-byte BTF header`, { offset: 0 });
    }
    const magicLittle = this.view.getUint16(0, true);
    if (magicLittle === btfMagic) this.littleEndian = true;
    else if (this.view.getUint16(0, false) === btfMagic) this.littleEndian = false;
    else throw new BtfFormatError(`bad magic 0x${magicLittle.toString(16).padStart(4, "0")}, expected 0xeb9f`, { offset: 0 });
    this.byteOrder = this.littleEndian ? "little" : "big";
    const version = bytes[2]!;
    if (version !== 1) throw new BtfFormatError(`unsupported BTF version ${version}, expected 1`, { offset: 2 });
    const headerLength = this.u32(4);
    if (headerLength < headerMinimumLength || headerLength > bytes.byteLength) {
      throw new BtfFormatError(`header length ${headerLength} out of range ${headerMinimumLength}..${bytes.byteLength}`, { offset: 4 });
    }
    for (let offset = headerMinimumLength; offset < headerLength; offset++) {
      if (bytes[offset] !== 0) throw new BtfFormatError("unknown non-zero header field", { offset });
    }
    const typeOffset = this.u32(8);
    const typeLength = this.u32(12);
    const stringOffset = this.u32(16);
    const stringLength = this.u32(20);
    const dataLength = bytes.byteLength - headerLength;
    if (typeOffset % 4 !== 0) throw new BtfFormatError(`type section offset ${typeOffset} is not 4-byte aligned`, { offset: 8 });
    if (typeOffset + typeLength > dataLength) {
      throw new BtfFormatError(`type section ${typeOffset}+${typeLength} runs past the ${dataLength} bytes after the header`, { offset: 12 });
    }
    if (stringOffset + stringLength > dataLength) {
      throw new BtfFormatError(`string section ${stringOffset}+${stringLength} runs past the ${dataLength} bytes after the header`, { offset: 20 });
    }
    if (typeOffset < stringOffset + stringLength && stringOffset < typeOffset + typeLength) {
      throw new BtfFormatError("type and string sections overlap", { offset: 8 });
    }
    this.stringsStart = headerLength + stringOffset;
    this.stringsOwnLength = stringLength;
    this.stringOffsetBase = base ? base.stringsLength : 0;
    this.stringsLength = this.stringOffsetBase + stringLength;
    if (stringLength > 0 && bytes[this.stringsStart + stringLength - 1] !== 0) {
      throw new BtfFormatError("string section does not end with a NUL byte", { offset: this.stringsStart + stringLength - 1 });
    }
    if (!base && (stringLength === 0 || bytes[this.stringsStart] !== 0)) {
      throw new BtfFormatError("string section must start with the empty string", { offset: this.stringsStart });
    }
    this.firstTypeId = base ? base.typeCount : 1;

    const typesStart = headerLength + typeOffset;
    const typesEnd = typesStart + typeLength;
    const offsets = new Uint32Array(Math.floor(typeLength / typeHeaderLength));
    let count = 0;
    let position = typesStart;
    while (position < typesEnd) {
      const id = this.firstTypeId + count;
      if (position + typeHeaderLength > typesEnd) {
        throw new BtfFormatError(`type header runs past the end of the type section`, { offset: position, typeId: id });
      }
      const info = this.u32(position + 4);
      const kindNumber = (info >>> 24) & 0x1f;
      const length = extraLength(kindNumber, info & 0xffff);
      if (length < 0) throw new BtfFormatError(`unknown kind ${kindNumber}`, { offset: position, typeId: id });
      if (position + typeHeaderLength + length > typesEnd) {
        throw new BtfFormatError(`${btfKindKernelName[btfKindByNumber[kindNumber]!]} runs past the end of the type section`, { offset: position, typeId: id });
      }
      offsets[count++] = position;
      position += typeHeaderLength + length;
    }
    if (this.firstTypeId + count > maximumTypeId) throw new BtfFormatError(`too many types (${count})`, { offset: typesStart });
    this.offsets = offsets.subarray(0, count);
    this.typeCount = this.firstTypeId + count;
    this.decoded = new Array<BtfType | undefined>(count);
    if (options.validate ?? true) this.validate();
  }

  /** Parse a BTF blob (either byte order). Throws BtfFormatError for malformed input. */
  static parse(bytes: Uint8Array, options: BtfParseOptions = {}): Btf {
    return new Btf(bytes, options);
  }

  private u32(offset: number): number {
    return this.view.getUint32(offset, this.littleEndian);
  }

  private i32(offset: number): number {
    return this.view.getInt32(offset, this.littleEndian);
  }

  /** Byte offset of a type's record in `bytes`; for base types, in the base's bytes. */
  private offsetOf(id: number): number {
    const offset = this.offsets[id - this.firstTypeId];
    if (offset === undefined || !Number.isInteger(id)) throw this.missingType(id);
    return offset;
  }

  private missingType(id: number, from?: number): BtfFormatError {
    return new BtfFormatError(
      `type id ${id} does not exist (valid ids are 0..${this.typeCount - 1})` + (from !== undefined ? `, referenced by type [${from}]` : ""),
      from !== undefined ? { typeId: from } : {},
      "read BTF",
    );
  }

  /** True when `id` names a type (0, void, always exists). */
  has(id: number): boolean {
    if (typeof id !== "number") throw argumentError("look up a BTF type", "id", "a type id (an integer)", id);
    return Number.isInteger(id) && id >= 0 && id < this.typeCount;
  }

  /** The string at `offset` in the string section (offsets past the base's strings are this blob's). */
  string(offset: number): string {
    if (typeof offset !== "number" || !Number.isInteger(offset)) throw argumentError("read a BTF string", "offset", "an integer offset into the string section", offset);
    return this.stringAt(offset);
  }

  private stringAt(offset: number): string {
    if (offset < this.stringOffsetBase) return this.base!.stringAt(offset);
    const local = offset - this.stringOffsetBase;
    if (!(local >= 0 && local < this.stringsOwnLength)) {
      throw new BtfFormatError(`string offset ${offset} is outside the string section (length ${this.stringsLength})`, {}, "read BTF");
    }
    // The whole section is decoded once; each string is then a cheap slice of it.
    this.stringText ??= this.buffer.toString("latin1", this.stringsStart, this.stringsStart + this.stringsOwnLength);
    return this.stringText.slice(local, this.stringText.indexOf("\0", local));
  }

  /** The kind of a type, read without decoding it. */
  kindOf(id: number): BtfKind {
    if (id === 0) return "void";
    if (id < this.firstTypeId && this.base) return this.base.kindOf(id);
    return btfKindByNumber[(this.u32(this.offsetOf(id) + 4) >>> 24) & 0x1f]!;
  }

  /** The name of a type ("" when anonymous), read without decoding it. */
  nameOf(id: number): string {
    if (id === 0) return "";
    if (id < this.firstTypeId && this.base) return this.base.nameOf(id);
    return this.stringAt(this.u32(this.offsetOf(id)));
  }

  /** The decoded type with this id; throws BtfFormatError when there is none. */
  type(id: number): BtfType {
    if (id === 0) return voidType;
    if (id < this.firstTypeId && this.base) return this.base.type(id);
    const index = id - this.firstTypeId;
    const cached = this.decoded[index];
    if (cached) return cached;
    const type = this.decode(id, this.offsetOf(id));
    this.decoded[index] = type;
    return type;
  }

  /** The type with this id, checked to be of the given kind. */
  typeOfKind<K extends BtfKind>(id: number, kind: K): BtfTypeOfKind<K> {
    const type = this.type(id);
    if (type.kind !== kind) {
      expectOneOf("read BTF", "kind", kind, btfKindByNumber);
      throw new BtfFormatError(`expected ${btfKindKernelName[kind]}, found ${btfKindKernelName[type.kind]}`, { typeId: id }, "read BTF");
    }
    return type as BtfTypeOfKind<K>;
  }

  /** Every type id this blob defines (not the base's), in order. */
  *ids(): IterableIterator<number> {
    for (let id = this.firstTypeId; id < this.typeCount; id++) yield id;
  }

  /** [id, type] for every type this blob defines (decodes each one). */
  *entries(): IterableIterator<[number, BtfType]> {
    for (let id = this.firstTypeId; id < this.typeCount; id++) yield [id, this.type(id)];
  }

  /** Ids of the types named `name` (optionally only of `kind`), searching the base too. */
  findByName(name: string, kind?: BtfKind): number[] {
    checkNameAndKind("find BTF types by name", name, kind);
    return this.idsNamed(name, kind);
  }

  private idsNamed(name: string, kind: BtfKind | undefined): number[] {
    const result = this.base ? this.base.idsNamed(name, kind) : [];
    for (const id of this.ownIdsNamed(name)) {
      if (kind === undefined || this.kindOf(id) === kind) result.push(id);
    }
    return result;
  }

  /**
   * This blob's types named `name`. Before the full name index exists, this finds the
   * name's offsets in the string section and looks them up in an index keyed by name
   * offset, which is much cheaper to build than one keyed by decoded names.
   */
  private ownIdsNamed(name: string): number[] {
    // Each search scans the string section; past a few dozen lookups the full index pays off.
    if (this.nameIndex || ++this.searchesByOffset > searchesBeforeFullIndex) return asList(this.names().get(name));
    if (name === "" || name.includes("\0")) return [];
    const nameOffsets = this.stringOffsetsOf(name);
    const ids: number[] = [];
    if (this.nameOffsets === undefined && this.searchesByOffset <= searchesBeforeOffsetIndex) {
      // The first few searches scan the type headers: much cheaper than building the index
      // (a tool that needs a handful of structs starts in milliseconds, not a tenth of a second).
      const typeNames = this.typeNameOffsets();
      for (const nameOffset of nameOffsets) {
        for (let position = typeNames.indexOf(nameOffset); position >= 0; position = typeNames.indexOf(nameOffset, position + 1)) ids.push(this.firstTypeId + position);
      }
      return ids.sort((a, b) => a - b);
    }
    const byOffset = this.nameOffsetIndex();
    for (const offset of nameOffsets) ids.push(...asList(byOffset.get(offset)));
    return ids.sort((a, b) => a - b);
  }

  /** Offset of the string `value` in the string space (the base's first), or undefined. */
  findString(value: string): number | undefined {
    expectString("find a BTF string", "value", value);
    if (value === "") return 0;
    if (value.includes("\0")) return undefined;
    return this.stringOffsetsOf(value)[0];
  }

  /** Every offset at which the string `value` starts, in the base's and this blob's string sections. */
  private stringOffsetsOf(value: string): number[] {
    const offsets = this.base ? this.base.stringOffsetsOf(value) : [];
    this.stringText ??= this.buffer.toString("latin1", this.stringsStart, this.stringsStart + this.stringsOwnLength);
    const needle = `\0${value}\0`;
    for (let at = this.stringText.indexOf(needle); at >= 0; at = this.stringText.indexOf(needle, at + 1)) {
      offsets.push(this.stringOffsetBase + at + 1);
    }
    // A split blob's section need not start with a NUL: its first string has no NUL before it.
    if (this.base && this.stringText.startsWith(value + "\0")) offsets.push(this.stringOffsetBase);
    return offsets;
  }

  /** Each type's name offset, by position: one pass, then searches are typed-array scans. */
  private typeNameOffsets(): Uint32Array {
    if (this.typeNames) return this.typeNames;
    const names = new Uint32Array(this.offsets.length);
    for (let position = 0; position < names.length; position++) names[position] = this.u32(this.offsets[position]!);
    this.typeNames = names;
    return names;
  }

  private nameOffsetIndex(): Map<number, number | number[]> {
    if (this.nameOffsets) return this.nameOffsets;
    const index = new Map<number, number | number[]>();
    const count = this.offsets.length;
    for (let position = 0; position < count; position++) {
      const nameOffset = this.u32(this.offsets[position]!);
      if (nameOffset === 0) continue;
      const id = this.firstTypeId + position;
      const existing = index.get(nameOffset);
      if (existing === undefined) index.set(nameOffset, id);
      else if (typeof existing === "number") index.set(nameOffset, [existing, id]);
      else existing.push(id);
    }
    this.nameOffsets = index;
    return index;
  }

  /** The one type named `name` of `kind`; throws when there is none. With several, the first. */
  findType(name: string, kind?: BtfKind): number {
    checkNameAndKind("look up a BTF type", name, kind);
    const ids = this.idsNamed(name, kind);
    if (ids.length === 0) {
      throw new BtfLookupError(`no ${kind ? btfKindKernelName[kind] + " " : "type "}named "${name}"`, undefined, "check the spelling; the running kernel may not have this type");
    }
    return ids[0]!;
  }

  /** Every distinct type name this blob defines (not the base's), for searches by pattern. */
  names(): ReadonlyMap<string, number | number[]> {
    if (this.nameIndex) return this.nameIndex;
    const index = new Map<string, number | number[]>();
    const count = this.offsets.length;
    for (let index_ = 0; index_ < count; index_++) {
      const nameOffset = this.u32(this.offsets[index_]!);
      if (nameOffset === 0) continue;
      const name = this.stringAt(nameOffset);
      const id = this.firstTypeId + index_;
      const existing = index.get(name);
      if (existing === undefined) index.set(name, id);
      else if (typeof existing === "number") index.set(name, [existing, id]);
      else existing.push(id);
    }
    this.nameIndex = index;
    return index;
  }

  private checkReference(id: number, from: number): number {
    if (!(id >= 0 && id < this.typeCount)) throw this.missingType(id, from);
    return id;
  }

  private checkString(offset: number, id: number, position: number): void {
    if (offset >= this.stringsLength) {
      throw new BtfFormatError(`string offset ${offset} is outside the string section (length ${this.stringsLength})`, { offset: position, typeId: id });
    }
  }

  /** Check every string offset and type reference, and the constraints each kind puts on its fields. */
  validate(): void {
    const count = this.offsets.length;
    for (let index = 0; index < count; index++) {
      const id = this.firstTypeId + index;
      const position = this.offsets[index]!;
      this.checkString(this.u32(position), id, position);
      const info = this.u32(position + 4);
      const kindNumber = (info >>> 24) & 0x1f;
      const vlen = info & 0xffff;
      const sizeOrType = this.u32(position + 8);
      const extra = position + typeHeaderLength;
      switch (kindNumber) {
        case 1: {
          const encoding = this.u32(extra);
          const bits = encoding & 0xff;
          const bitOffset = (encoding >>> 16) & 0xff;
          if (![1, 2, 4, 8, 16].includes(sizeOrType)) throw new BtfFormatError(`INT size ${sizeOrType} is not 1, 2, 4, 8 or 16`, { offset: position + 8, typeId: id });
          if (bits === 0 || bits + bitOffset > sizeOrType * 8 || bits > 128) {
            throw new BtfFormatError(`INT bits ${bits} at bit offset ${bitOffset} do not fit in ${sizeOrType} bytes`, { offset: extra, typeId: id });
          }
          break;
        }
        case 2: case 8: case 9: case 10: case 11: case 12: case 14: case 17: case 18:
          this.checkReference(sizeOrType, id);
          if (sizeOrType === id) throw new BtfFormatError("type refers to itself", { offset: position + 8, typeId: id });
          if (kindNumber === 12 && vlen > 2) throw new BtfFormatError(`FUNC linkage ${vlen} is not 0, 1 or 2`, { offset: position + 4, typeId: id });
          if (kindNumber === 14 && this.u32(extra) > 2) throw new BtfFormatError(`VAR linkage ${this.u32(extra)} is not 0, 1 or 2`, { offset: extra, typeId: id });
          break;
        case 3:
          this.checkReference(this.u32(extra), id);
          this.checkReference(this.u32(extra + 4), id);
          break;
        case 4: case 5:
          for (let member = 0; member < vlen; member++) {
            const at = extra + member * 12;
            this.checkString(this.u32(at), id, at);
            this.checkReference(this.u32(at + 4), id);
          }
          break;
        case 6: case 19: {
          const stride = kindNumber === 6 ? 8 : 12;
          for (let value = 0; value < vlen; value++) this.checkString(this.u32(extra + value * stride), id, extra + value * stride);
          break;
        }
        case 13:
          this.checkReference(sizeOrType, id);
          for (let parameter = 0; parameter < vlen; parameter++) {
            const at = extra + parameter * 8;
            this.checkString(this.u32(at), id, at);
            this.checkReference(this.u32(at + 4), id);
          }
          break;
        case 15:
          for (let variable = 0; variable < vlen; variable++) this.checkReference(this.u32(extra + variable * 12), id);
          break;
        default:
          break;
      }
    }
  }

  private decode(id: number, position: number): BtfType {
    const name = this.stringAt(this.u32(position));
    const info = this.u32(position + 4);
    const kind = btfKindByNumber[(info >>> 24) & 0x1f]!;
    const vlen = info & 0xffff;
    const kindFlag = (info & 0x80000000) !== 0;
    const sizeOrType = this.u32(position + 8);
    const extra = position + typeHeaderLength;
    const reference = (value: number): number => this.checkReference(value, id);
    switch (kind) {
      case "int": {
        const encoding = this.u32(extra);
        const flags = (encoding >>> 24) & 0x0f;
        return {
          kind, name, size: sizeOrType,
          signed: (flags & 1) !== 0, char: (flags & 2) !== 0, bool: (flags & 4) !== 0,
          bitOffset: (encoding >>> 16) & 0xff, bits: encoding & 0xff,
        };
      }
      case "pointer": case "typedef": case "volatile": case "const": case "restrict":
        return { kind, name, type: reference(sizeOrType) };
      case "typeTag":
        return { kind, name, type: reference(sizeOrType), attribute: kindFlag };
      case "array":
        return { kind, name, type: reference(this.u32(extra)), indexType: reference(this.u32(extra + 4)), length: this.u32(extra + 8) };
      case "struct": case "union": {
        const members: BtfMember[] = new Array(vlen);
        for (let index = 0; index < vlen; index++) {
          const at = extra + index * 12;
          const offset = this.u32(at + 8);
          members[index] = {
            name: this.stringAt(this.u32(at)),
            type: reference(this.u32(at + 4)),
            bitOffset: kindFlag ? offset & 0xffffff : offset,
            bitfieldSize: kindFlag ? offset >>> 24 : 0,
          };
        }
        return { kind, name, size: sizeOrType, kindFlag, members };
      }
      case "enum": {
        const values: BtfEnumValue[] = new Array(vlen);
        for (let index = 0; index < vlen; index++) {
          const at = extra + index * 8;
          values[index] = { name: this.stringAt(this.u32(at)), value: kindFlag ? this.i32(at + 4) : this.u32(at + 4) };
        }
        return { kind, name, size: sizeOrType, signed: kindFlag, values };
      }
      case "enum64": {
        const values: BtfEnum64Value[] = new Array(vlen);
        for (let index = 0; index < vlen; index++) {
          const at = extra + index * 12;
          const unsigned = (BigInt(this.u32(at + 8)) << 32n) | BigInt(this.u32(at + 4));
          values[index] = { name: this.stringAt(this.u32(at)), value: kindFlag ? BigInt.asIntN(64, unsigned) : unsigned };
        }
        return { kind, name, size: sizeOrType, signed: kindFlag, values };
      }
      case "forward":
        return { kind, name, union: kindFlag };
      case "function": {
        const linkage = linkages[vlen];
        if (linkage === undefined) throw new BtfFormatError(`FUNC linkage ${vlen} is not 0, 1 or 2`, { offset: position + 4, typeId: id });
        return { kind, name, type: reference(sizeOrType), linkage };
      }
      case "functionProto": {
        const parameters: BtfParameter[] = new Array(vlen);
        for (let index = 0; index < vlen; index++) {
          const at = extra + index * 8;
          parameters[index] = { name: this.stringAt(this.u32(at)), type: reference(this.u32(at + 4)) };
        }
        return { kind, name, returnType: reference(sizeOrType), parameters };
      }
      case "variable": {
        const linkageNumber = this.u32(extra);
        const linkage = linkages[linkageNumber];
        if (linkage === undefined) throw new BtfFormatError(`VAR linkage ${linkageNumber} is not 0, 1 or 2`, { offset: extra, typeId: id });
        return { kind, name, type: reference(sizeOrType), linkage };
      }
      case "dataSection": {
        const variables: BtfDataSectionVariable[] = new Array(vlen);
        for (let index = 0; index < vlen; index++) {
          const at = extra + index * 12;
          variables[index] = { type: reference(this.u32(at)), offset: this.u32(at + 4), size: this.u32(at + 8) };
        }
        return { kind, name, size: sizeOrType, variables };
      }
      case "float":
        return { kind, name, size: sizeOrType };
      case "declTag":
        return { kind, name, type: reference(sizeOrType), componentIndex: this.i32(extra), attribute: kindFlag };
      default:
        throw new BtfFormatError(`unexpected kind ${kind}`, { offset: position, typeId: id });
    }
  }

  /** A short description for messages: `STRUCT 'sk_buff' [873]`. */
  describe(id: number): string {
    expectInteger("describe a BTF type", "id", id);
    if (!this.has(id)) return `[${id}] (missing)`;
    const name = this.nameOf(id);
    return `${btfKindKernelName[this.kindOf(id)]} '${name === "" ? "(anon)" : name}' [${id}]`;
  }

  /** Skip const/volatile/restrict/type tags and typedefs (see skipQualifiers). */
  resolve(id: number, options: { keepTypedefs?: boolean } = {}): number {
    return skipQualifiers(this, id, options);
  }

  /** sizeof() of a type in bytes. */
  sizeOf(id: number): number {
    return sizeOf(this, id);
  }

  /** Alignment of a type in bytes. */
  alignmentOf(id: number): number {
    return alignmentOf(this, id);
  }

  /** A member of a struct/union by name, through anonymous members. */
  member(id: number | string, name: string): MemberLocation | undefined {
    return findMember(this, typeof id === "number" ? id : fieldLocation(this, id).type, name);
  }

  /** Locate a field by path: `field("sk_buff.cb[2]")` or `field("sock", "__sk_common.skc_dport")`. */
  field(root: string | number, path?: string): FieldLocation {
    return fieldLocation(this, root, path);
  }

  /** Byte offset of a field: `fieldOffset("sk_buff", "len")`. */
  fieldOffset(root: string | number, path?: string): number {
    return fieldOffset(this, root, path);
  }

  /** Value of an enumerator: `enumValue("bpf_map_type", "BPF_MAP_TYPE_ARRAY")`. */
  enumValue(enumName: string | number, valueName: string): number | bigint {
    return enumValue(this, enumName, valueName);
  }

  /** The type as a C type expression, e.g. "struct sock *". */
  formatC(id: number, declarator = "", options: CFormatOptions = {}): string {
    return formatCType(this, id, declarator, options);
  }

  /** The type as a C definition (struct bodies included). */
  formatCDefinition(id: number, options: CFormatOptions = {}): string {
    return formatCDefinition(this, id, options);
  }
}

function checkNameAndKind(operation: string, name: unknown, kind: unknown): void {
  expectString(operation, "name", name);
  if (kind !== undefined) expectOneOf(operation, "kind", kind, btfKindByNumber);
}

function asList(found: number | number[] | undefined): number[] {
  return found === undefined ? [] : typeof found === "number" ? [found] : [...found];
}
