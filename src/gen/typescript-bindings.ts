/**
 * `netbpf gen`: TypeScript bindings for a clang-built object, from its BTF —
 * interfaces and codecs for map keys, values and named event structs, and a
 * typed `load()` (the counterpart of bpf2go and libbpf skeletons). Pure: a
 * CollectionSpec in, source text out.
 */
import { skipQualifiers } from "../btf/btf-query.js";
import type { CollectionMapSpec, CollectionSpec } from "../elf/collection-spec.js";
import { MapType } from "../sys/bpf-constants.js";
import { UsageError } from "../sys/errors.js";
import { findNamedType, valueLayout, type FieldLayout, type ValueLayout } from "../btf/value-layout.js";
import { dataSectionLayout } from "../elf/data-section.js";
import { isPerCpuMapType } from "../core/map.js";
import { Btf } from "../btf/btf.js";
import { argumentError, expectObject, expectString } from "../sys/argument-checks.js";

export interface TypeScriptBindingsOptions {
  /** Where the generated module finds the object, relative to the module (default "./object.o"). */
  objectPath?: string;
  /** Embed these object bytes in the module (base64) instead of reading a file at load time. */
  embed?: Uint8Array;
  /** Struct, union or typedef names to generate codecs for (ring buffer events). */
  types?: readonly string[];
  /** Module specifier the generated code imports netbpf from (default "netbpf"). */
  importFrom?: string;
  /** Shown in the header comment (default: objectPath). */
  sourceName?: string;
}

const operation = "generate TypeScript bindings";
const identifierPattern = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const tupleLimit = 16;
const fdValueTypes = new Set<MapType>([MapType.ProgArray, MapType.ArrayOfMaps, MapType.HashOfMaps, MapType.PerfEventArray, MapType.CgroupArray, MapType.Devmap, MapType.DevmapHash, MapType.Cpumap, MapType.Xskmap, MapType.Sockmap, MapType.Sockhash]);

const reservedNames = [
  "BpfMap", "Collection", "Program", "Codec", "CollectionSpec", "CollectionOptions", "UsageError", "loadCollectionSpec",
  "encodeToBuffer", "fileURLToPath", "Buffer", "Maps", "Programs", "ProgramName", "Constants", "LoadOptions", "LoadedObjects",
  "load", "loadSpec", "objectPath", "objectBase64", "typedMap", "setConstants", "constantSetters", "readBitfield", "writeBitfield",
  "decodeArray", "encodeArray", "readString", "writeString", "writeBytes", "Object", "Array", "String", "Number", "Symbol",
  "Record", "Partial", "Pick", "Omit", "Error", "Map", "Set", "Promise", "BigInt", "Math",
];

/** Turns a C name into a PascalCase TypeScript type name. */
export function pascalName(name: string): string {
  expectString("name TypeScript type", "name", name);
  const words = name.split(/[^A-Za-z0-9]+/).filter(Boolean);
  let result = words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join("");
  if (result === "") result = "Anonymous";
  if (/^[0-9]/.test(result)) result = `T${result}`;
  return result;
}

/** Turns any name into a valid identifier (for map and program properties). */
export function identifierName(name: string): string {
  expectString("name TypeScript identifier", "name", name);
  let result = name.replace(/^\.+/, "").replace(/[^A-Za-z0-9_$]+/g, "_");
  if (result === "") result = "unnamed";
  if (/^[0-9]/.test(result)) result = `_${result}`;
  return result;
}

/** Text safe inside a comment: no comment end, no line breaks. */
function commentText(text: string): string {
  return text.replace(/\*\//g, "*\\/").replace(/[\r\n\u2028\u2029]/g, " ");
}

function propertyKey(name: string): string {
  return identifierPattern.test(name) ? name : JSON.stringify(name);
}

function access(value: string, name: string): string {
  return identifierPattern.test(name) ? `${value}.${name}` : `${value}[${JSON.stringify(name)}]`;
}

function plus(base: string, offset: number): string {
  return offset === 0 ? base : `${base} + ${offset}`;
}

class BindingsEmitter {
  readonly #btf: Btf;
  readonly #used = new Set<string>(reservedNames);
  readonly #declarations: string[] = [];
  readonly #recordNames = new Map<number, { type: string; codec: string }>();
  readonly #enumNames = new Map<number, string>();
  readonly #codecNames = new Map<string, string>();
  readonly helpers = new Set<string>();

  constructor(btf: Btf) {
    this.#btf = btf;
  }

  get declarations(): string[] {
    return this.#declarations;
  }

  unique(name: string): string {
    let candidate = name;
    for (let n = 2; this.#used.has(candidate); n++) candidate = `${name}${n}`;
    this.#used.add(candidate);
    return candidate;
  }

  /** The TypeScript type of values with this layout. */
  typeOf(layout: ValueLayout, suggestion: string): string {
    switch (layout.kind) {
      case "integer": return layout.size === 8 ? "bigint" : "number";
      case "boolean": return "boolean";
      case "float": return "number";
      case "bytes": return "Buffer";
      case "string": return "string";
      case "enum": return this.enumType(layout);
      case "array": {
        const element = this.typeOf(layout.element, suggestion);
        return layout.length <= tupleLimit ? `[${new Array(layout.length).fill(element).join(", ")}]` : `${element}[]`;
      }
      case "record": return this.record(layout, suggestion).type;
    }
  }

  enumType(layout: ValueLayout & { kind: "enum" }): string {
    const base = layout.size === 8 ? "bigint" : "number";
    if (!layout.name) return base;
    let name = this.#enumNames.get(layout.typeId);
    if (name) return name;
    name = this.unique(pascalName(layout.name));
    this.#enumNames.set(layout.typeId, name);
    const literal = (v: number | bigint) => (layout.size === 8 ? `${v}n` : String(v));
    const seen = new Set<string>();
    const entries = layout.values.filter((v) => !seen.has(v.name) && seen.add(v.name)).map((v) => `  ${propertyKey(v.name)}: ${literal(v.value)},`);
    this.#declarations.push(
      `/** enum ${commentText(layout.name)} */\nexport const ${name} = {\n${entries.join("\n")}\n} as const;\n` +
      `export type ${name} = (typeof ${name})[keyof typeof ${name}];`,
    );
    return name;
  }

  /** Declares the interface and codec of a struct or union (once per BTF type). */
  record(layout: ValueLayout & { kind: "record" }, suggestion: string): { type: string; codec: string } {
    const known = this.#recordNames.get(layout.typeId);
    if (known) return known;
    const typeName = this.unique(pascalName(layout.name || suggestion));
    const codecName = this.unique(`${typeName[0]!.toLowerCase()}${typeName.slice(1)}Codec`);
    const names = { type: typeName, codec: codecName };
    this.#recordNames.set(layout.typeId, names);
    const properties: string[] = [];
    const decodeLines: string[] = [];
    for (const field of layout.fields) {
      const optional = layout.union || field.unionGroup !== undefined;
      const type = this.typeOf(field.layout, `${typeName}_${field.name}`);
      properties.push(`  ${propertyKey(field.name)}${optional ? "?" : ""}: ${type};`);
      decodeLines.push(`      ${propertyKey(field.name)}: ${this.fieldRead(field, "b", "o")},`);
    }
    const encodeLines = [`    b.fill(0, o, o + ${layout.size});`, ...this.encodeFields(layout)];
    const what = layout.name ? `${layout.union ? "union" : "struct"} ${layout.name}` : `anonymous ${layout.union ? "union" : "struct"} (${typeName})`;
    this.#declarations.push(
      `/** ${commentText(what)}: ${layout.size} bytes */\nexport interface ${typeName} {\n${properties.join("\n")}\n}\n\n` +
      `export const ${codecName}: Codec<${typeName}> = {\n  size: ${layout.size},\n` +
      `  encode(${layout.fields.length ? "v" : "_v"}, b, o) {\n${encodeLines.join("\n")}\n  },\n` +
      `  decode(b, o) {\n    return {\n${decodeLines.join("\n")}\n    };\n  },\n};`,
    );
    return names;
  }

  private encodeFields(layout: ValueLayout & { kind: "record" }): string[] {
    const lines: string[] = [];
    if (layout.union) {
      // A union holds one member: write the first one the value sets.
      layout.fields.forEach((field, i) => {
        lines.push(`    ${i === 0 ? "if" : "else if"} (${access("v", field.name)} !== undefined) ${this.fieldWrite(field, access("v", field.name), "b", "o")}`);
      });
      return lines;
    }
    let group: number | undefined;
    let first = true;
    for (const field of layout.fields) {
      const value = access("v", field.name);
      if (field.unionGroup === undefined) {
        group = undefined;
        lines.push(`    ${this.fieldWrite(field, value, "b", "o")}`);
        continue;
      }
      first = group !== field.unionGroup;
      group = field.unionGroup;
      lines.push(`    ${first ? "if" : "else if"} (${value} !== undefined) ${this.fieldWrite(field, value, "b", "o")}`);
    }
    return lines;
  }

  private fieldRead(field: FieldLayout, buffer: string, offset: string): string {
    if (field.bitfield) {
      this.helpers.add("bitfield");
      return `readBitfield(${buffer}, ${plus(offset, field.offset)}, ${field.bitfield.shift}, ${field.bitfield.bits}, ${field.bitfield.signed})`;
    }
    return this.read(field.layout, buffer, plus(offset, field.offset), field.name);
  }

  private fieldWrite(field: FieldLayout, value: string, buffer: string, offset: string): string {
    if (field.bitfield) {
      this.helpers.add("bitfield");
      return `writeBitfield(${buffer}, ${plus(offset, field.offset)}, ${field.bitfield.shift}, ${field.bitfield.bits}, ${value});`;
    }
    return this.write(field.layout, value, buffer, plus(offset, field.offset), field.name);
  }

  /** An expression reading a value of this layout. */
  read(layout: ValueLayout, b: string, o: string, suggestion: string): string {
    switch (layout.kind) {
      case "integer": return `${b}.${integerMethod("read", layout.size, layout.signed)}(${o})`;
      case "enum": {
        const type = this.enumType(layout);
        const read = `${b}.${integerMethod("read", layout.size, layout.signed)}(${o})`;
        return type === "number" || type === "bigint" ? read : `${read} as ${type}`;
      }
      case "boolean": return `${b}[${o}] !== 0`;
      case "float": return `${b}.${layout.size === 4 ? "readFloatLE" : "readDoubleLE"}(${o})`;
      case "bytes": return `Buffer.from(${b}.subarray(${o}, ${o} + ${layout.size}))`;
      case "string":
        this.helpers.add("string");
        return `readString(${b}, ${o}, ${layout.size})`;
      case "array": {
        this.helpers.add("array");
        const type = this.typeOf(layout, suggestion);
        return `decodeArray(${this.codec(layout.element, suggestion)}, ${layout.length}, ${b}, ${o}) as ${type}`;
      }
      case "record": return `${this.record(layout, suggestion).codec}.decode(${b}, ${o})`;
    }
  }

  /** A statement writing `value` with this layout. */
  write(layout: ValueLayout, value: string, b: string, o: string, suggestion: string): string {
    switch (layout.kind) {
      case "integer":
      case "enum": return `${b}.${integerMethod("write", layout.size, layout.signed)}(${value}, ${o});`;
      case "boolean": return `${b}[${o}] = ${value} ? 1 : 0;`;
      case "float": return `${b}.${layout.size === 4 ? "writeFloatLE" : "writeDoubleLE"}(${value}, ${o});`;
      case "bytes":
        this.helpers.add("bytes");
        return `writeBytes(${value}, ${b}, ${o}, ${layout.size});`;
      case "string":
        this.helpers.add("string");
        return `writeString(${value}, ${b}, ${o}, ${layout.size});`;
      case "array":
        this.helpers.add("array");
        return `encodeArray(${this.codec(layout.element, suggestion)}, ${layout.length}, ${value}, ${b}, ${o});`;
      case "record": return `${this.record(layout, suggestion).codec}.encode(${value}, ${b}, ${o});`;
    }
  }

  /** The name of a codec constant for this layout (declared once). */
  codec(layout: ValueLayout, suggestion: string): string {
    if (layout.kind === "record") return this.record(layout, suggestion).codec;
    const key = layoutKey(layout);
    const known = this.#codecNames.get(key);
    if (known) return known;
    const type = this.typeOf(layout, suggestion);
    const name = this.unique(`${codecStem(layout)}Codec`);
    this.#codecNames.set(key, name);
    const decode = this.read(layout, "b", "o", suggestion);
    const encode = this.write(layout, "v", "b", "o", suggestion);
    this.#declarations.push(`export const ${name}: Codec<${type}> = {\n  size: ${layout.size},\n  encode(v, b, o) {\n    ${encode}\n  },\n  decode(b, o) {\n    return ${decode};\n  },\n};`);
    return name;
  }
}

function integerMethod(direction: "read" | "write", size: 1 | 2 | 4 | 8, signed: boolean): string {
  const sign = signed ? "Int" : "UInt";
  if (size === 8) return `${direction}Big${sign}64LE`;
  if (size === 1) return `${direction}${sign}8`;
  return `${direction}${sign}${size * 8}LE`;
}

function layoutKey(layout: ValueLayout): string {
  switch (layout.kind) {
    case "integer": return `${layout.signed ? "i" : "u"}${layout.size}`;
    case "enum": return `enum${layout.typeId}`;
    case "array": return `array${layout.length}(${layoutKey(layout.element)})`;
    case "record": return `record${layout.typeId}`;
    default: return `${layout.kind}${layout.size}`;
  }
}

function codecStem(layout: ValueLayout): string {
  switch (layout.kind) {
    case "integer": return `${layout.signed ? "int" : "uint"}${layout.size * 8}`;
    case "enum": return layout.name ? `${pascalName(layout.name)[0]!.toLowerCase()}${pascalName(layout.name).slice(1)}` : `enum${layout.size * 8}`;
    case "boolean": return "boolean";
    case "float": return `float${layout.size * 8}`;
    case "bytes": return `bytes${layout.size}`;
    case "string": return `string${layout.size}`;
    case "array": return `array${layout.length}Of${(s => s[0]!.toUpperCase() + s.slice(1))(codecStem(layout.element))}`;
    case "record": return pascalName(layout.name);
  }
}

const helperSource: Record<string, string> = {
  bitfield: `function readBitfield(b: Buffer, o: number, shift: number, bits: number, signed: boolean): number {
  const span = Math.ceil((shift + bits) / 8);
  let word = 0;
  for (let i = span - 1; i >= 0; i--) word = word * 256 + b[o + i]!;
  let value = Math.floor(word / 2 ** shift) % 2 ** bits;
  if (signed && value >= 2 ** (bits - 1)) value -= 2 ** bits;
  return value;
}

function writeBitfield(b: Buffer, o: number, shift: number, bits: number, value: number): void {
  const span = Math.ceil((shift + bits) / 8);
  let word = 0;
  for (let i = span - 1; i >= 0; i--) word = word * 256 + b[o + i]!;
  const old = Math.floor(word / 2 ** shift) % 2 ** bits;
  const field = ((Math.trunc(value) % 2 ** bits) + 2 ** bits) % 2 ** bits;
  word = word - old * 2 ** shift + field * 2 ** shift;
  for (let i = 0; i < span; i++) {
    b[o + i] = word % 256;
    word = Math.floor(word / 256);
  }
}`,
  string: `function readString(b: Buffer, o: number, size: number): string {
  const end = b.indexOf(0, o);
  return b.toString("utf8", o, end < 0 || end > o + size ? o + size : end);
}

function writeString(value: string, b: Buffer, o: number, size: number): void {
  b.fill(0, o, o + size);
  const bytes = Buffer.from(value, "utf8");
  if (bytes.length >= size) throw new RangeError(\`"\${value}" is \${bytes.length} bytes; the field holds \${size - 1} and a NUL\`);
  bytes.copy(b, o);
}`,
  bytes: `function writeBytes(value: Uint8Array, b: Buffer, o: number, size: number): void {
  if (value.length !== size) throw new RangeError(\`expected \${size} bytes, got \${value.length}\`);
  b.set(value, o);
}`,
  array: `function decodeArray<T>(codec: Codec<T>, length: number, b: Buffer, o: number): T[] {
  const out: T[] = [];
  for (let i = 0; i < length; i++) out.push(codec.decode(b, o + i * codec.size));
  return out;
}

function encodeArray<T>(codec: Codec<T>, length: number, value: readonly T[], b: Buffer, o: number): void {
  if (value.length !== length) throw new RangeError(\`expected \${length} elements, got \${value.length}\`);
  for (let i = 0; i < length; i++) codec.encode(value[i]!, b, o + i * codec.size);
}`,
};

interface MapBinding {
  property: string;
  name: string;
  keyType: string;
  valueType: string;
  keyCodec: string | undefined;
  valueCodec: string | undefined;
  /** One value per possible CPU: iteration yields arrays of the value type. */
  perCpu: boolean;
  description: string;
}

/** What iterating the map yields per key: the value, or one per CPU. */
function elementType(map: MapBinding): string {
  return map.perCpu ? `${/^\w+$/.test(map.valueType) ? map.valueType : `(${map.valueType})`}[]` : map.valueType;
}

function mapType(map: MapBinding): string {
  return `BpfMap<${map.keyType}, ${map.valueType}, ${elementType(map)}>`;
}

interface ConstantBinding {
  name: string;
  section: string;
  type: string;
  /** Codec for values DataSection.set cannot take directly. */
  codec: string | undefined;
}

function describeMap(spec: CollectionMapSpec, btf: Btf): string {
  const type = MapType[spec.type] ?? String(spec.type);
  if (spec.type === MapType.Ringbuf || spec.type === MapType.UserRingbuf) return `${type} map "${spec.name}" (${spec.maxEntries} bytes): read it with RingBufferReader`;
  if (spec.type === MapType.PerfEventArray) return `${type} map "${spec.name}": read it with PerfEventReader`;
  if (spec.data) return `${type} map "${spec.name}": u32 key 0 → the variables of ${spec.data.section}`;
  const key = spec.btfKeyTypeId ? btf.formatC(spec.btfKeyTypeId) : `${spec.keySize} bytes`;
  const value = spec.btfValueTypeId ? btf.formatC(spec.btfValueTypeId) : `${spec.valueSize} bytes`;
  return `${type} map "${spec.name}": ${key} → ${value}`;
}

/** Generates the TypeScript module for an object (see docs/gen.md). */
export function generateTypeScriptBindings(spec: CollectionSpec, options: TypeScriptBindingsOptions = {}): string {
  expectObject(operation, "spec", spec);
  if (!(spec.parsedBtf === undefined || spec.parsedBtf instanceof Btf) || typeof spec.programs !== "object" || spec.programs === null) throw argumentError(operation, "spec", "a CollectionSpec (from loadCollectionSpec)", spec);
  expectObject(operation, "options", options, true);
  const btf = spec.parsedBtf;
  if (!btf) throw new UsageError(operation, "the object has no BTF, so its types are unknown", "build it with `clang -g -O2 -target bpf`");
  const emitter = new BindingsEmitter(btf);
  const importFrom = options.importFrom ?? "netbpf";
  const objectPath = options.objectPath ?? "./object.o";

  // Event types first, so their names are the plain ones.
  const eventDecoders: string[] = [];
  for (const typeName of options.types ?? []) {
    const id = findNamedType(btf, typeName, operation);
    const layout = valueLayout(btf, id);
    if (layout.kind !== "record") throw new UsageError(operation, `"${typeName}" is ${btf.describe(skipQualifiers(btf, id))}, not a struct or union`);
    const names = emitter.record(layout, typeName);
    const decoder = emitter.unique(`decode${names.type}`);
    eventDecoders.push(
      `/** Decodes a ${names.type} from a ring buffer record (or any buffer holding one at \`offset\`). */\n` +
      `export function ${decoder}(record: Buffer, offset = 0): ${names.type} {\n` +
      `  if (record.length - offset < ${names.codec}.size) throw new RangeError(\`a ${names.type} is ${layout.size} bytes; the record has \${record.length - offset}\`);\n` +
      `  return ${names.codec}.decode(record, offset);\n}`,
    );
  }

  const maps: MapBinding[] = [];
  const constants: ConstantBinding[] = [];
  const readOnlyProperties: string[] = [];
  const mapProperties = new Set<string>();
  for (const [name, mapSpec] of Object.entries(spec.maps)) {
    let property = identifierName(name);
    for (let n = 2; mapProperties.has(property); n++) property = `${identifierName(name)}${n}`;
    mapProperties.add(property);
    const binding: MapBinding = { property, name, keyType: "Buffer", valueType: "Buffer", keyCodec: undefined, valueCodec: undefined, perCpu: isPerCpuMapType(mapSpec.type), description: describeMap(mapSpec, btf) };
    const streams = mapSpec.type === MapType.Ringbuf || mapSpec.type === MapType.UserRingbuf || mapSpec.type === MapType.PerfEventArray;
    if (!streams) {
      if (mapSpec.data) {
        const layout = dataSectionLayout(btf, mapSpec.data, mapSpec.valueSize, mapSpec.btfValueTypeId || -1 - maps.length);
        const names = emitter.record(layout, pascalName(mapSpec.data.section));
        Object.assign(binding, { keyType: "number", keyCodec: emitter.codec({ kind: "integer", size: 4, signed: false }, "key"), valueType: names.type, valueCodec: names.codec });
        if (mapSpec.data.readOnly) {
          if (layout.fields.length) readOnlyProperties.push(property);
          for (const field of layout.fields) {
            const direct = field.layout.kind === "integer" || field.layout.kind === "enum" || field.layout.kind === "boolean";
            constants.push({ name: field.name, section: mapSpec.data.section, type: emitter.typeOf(field.layout, field.name), codec: direct ? undefined : emitter.codec(field.layout, field.name) });
          }
        }
      } else {
        const keySuggestion = `${pascalName(name)}Key`;
        const valueSuggestion = `${pascalName(name)}Value`;
        if (mapSpec.btfKeyTypeId && mapSpec.keySize > 0) {
          const layout = valueLayout(btf, mapSpec.btfKeyTypeId);
          binding.keyType = emitter.typeOf(layout, keySuggestion);
          binding.keyCodec = emitter.codec(layout, keySuggestion);
        } else if (mapSpec.keySize === 4 && (mapSpec.type === MapType.Array || mapSpec.type === MapType.PercpuArray)) {
          binding.keyType = "number";
          binding.keyCodec = emitter.codec({ kind: "integer", size: 4, signed: false }, "key");
        }
        if (mapSpec.btfValueTypeId && mapSpec.valueSize > 0) {
          const layout = valueLayout(btf, mapSpec.btfValueTypeId);
          binding.valueType = emitter.typeOf(layout, valueSuggestion);
          binding.valueCodec = emitter.codec(layout, valueSuggestion);
        } else if (mapSpec.valueSize === 4 && fdValueTypes.has(mapSpec.type)) {
          // Lookups give the id of the program or map in the slot (write slots with putFd).
          binding.valueType = "number";
          binding.valueCodec = emitter.codec({ kind: "integer", size: 4, signed: false }, "value");
        }
      }
    }
    maps.push(binding);
  }

  const programNames = Object.keys(spec.programs);
  const lines: string[] = [];
  const typedMaps = maps.some((map) => map.keyCodec || map.valueCodec);
  if (!options.embed) lines.push(`import { existsSync } from "node:fs";`, `import { fileURLToPath } from "node:url";`);
  lines.push("");
  if (options.embed) {
    lines.push(`const objectBase64 = ${JSON.stringify(Buffer.from(options.embed).toString("base64"))};`);
  } else {
    const relative = objectPath.startsWith(".") || objectPath.startsWith("/") ? objectPath : `./${objectPath}`;
    lines.push(`const objectPath = fileURLToPath(new URL(${JSON.stringify(relative)}, import.meta.url));`);
  }
  lines.push("");
  if (emitter.helpers.size > 0) {
    for (const helper of ["bitfield", "string", "bytes", "array"]) if (emitter.helpers.has(helper)) lines.push(helperSource[helper]!, "");
  }
  for (const declaration of emitter.declarations) lines.push(declaration, "");
  for (const decoder of eventDecoders) lines.push(decoder, "");

  lines.push(`/** The object's maps, with typed keys and values where its BTF says what they are. */`);
  lines.push(`export interface Maps {`);
  for (const map of maps) lines.push(`  /** ${commentText(map.description)} */`, `  ${propertyKey(map.property)}: ${mapType(map)};`);
  lines.push(`}`, "");
  lines.push(`export type ProgramName = ${programNames.length ? programNames.map((n) => JSON.stringify(n)).join(" | ") : "never"};`, "");
  lines.push(`export interface Programs {`);
  for (const name of programNames) lines.push(`  /** section "${commentText(spec.programs[name]!.section)}" */`, `  ${propertyKey(name)}: Program;`);
  lines.push(`}`, "");
  lines.push(`/** Settable .rodata constants (written before the programs are loaded; the verifier sees them as constants). */`);
  lines.push(`export interface Constants {`);
  for (const constant of constants) lines.push(`  ${propertyKey(constant.name)}: ${constant.type};`);
  lines.push(`}`, "");
  lines.push(`const constantSetters: { [K in keyof Constants]-?: (spec: CollectionSpec, value: Constants[K]) => void } = {`);
  for (const constant of constants) {
    const value = constant.codec ? `encodeToBuffer(${constant.codec}, value)` : "value";
    lines.push(`  ${propertyKey(constant.name)}: (spec, value) => spec.dataSections[${JSON.stringify(constant.section)}]!.set(${JSON.stringify(constant.name)}, ${value}),`);
  }
  lines.push(`};`, "");
  lines.push(`function setConstants(spec: CollectionSpec, constants: Partial<Constants>): void {
  for (const [name, value] of Object.entries(constants)) {
    if (value === undefined) continue;
    const setter = (constantSetters as Record<string, (spec: CollectionSpec, value: unknown) => void>)[name];
    if (!setter) throw new UsageError("set constant", \`the object has no constant "\${name}"\`, "constants: " + (Object.keys(constantSetters).join(", ") || "none"));
    setter(spec, value);
  }
}
`);
  lines.push(`/** Reads the object into a CollectionSpec (fresh each call, so it can be changed). */`);
  lines.push(`export function loadSpec(): CollectionSpec {`);
  if (options.embed) lines.push(`  return loadCollectionSpec(Buffer.from(objectBase64, "base64"));`);
  else {
    // Compiled to another folder (tsc's outDir, a bundle), the module no longer sits next to the object.
    lines.push(`  if (!existsSync(objectPath)) {
    throw new UsageError(${JSON.stringify(`load ${objectPath.split("/").pop()}`)}, \`\${objectPath} does not exist: this module reads its object relative to itself\`,
      "copy the object next to the compiled module, or generate the module with the object embedded (netbpf gen embeds it unless given --no-embed)");
  }`, `  return loadCollectionSpec(objectPath);`);
  }
  lines.push(`}`, "");
  lines.push(`export interface LoadOptions<P extends ProgramName = ProgramName> extends Omit<CollectionOptions, "programs"> {
  /** .rodata constants to set before loading. */
  constants?: Partial<Constants>;
  /** Load only these programs (maps are always all created). */
  programs?: readonly P[];
}

export interface LoadedObjects<P extends ProgramName = ProgramName> {
  readonly collection: Collection;
  readonly maps: Maps;
  readonly programs: Pick<Programs, P>;
  /** The .rodata constants as the kernel holds them (read back after loading). */
  readonly constants: Constants;
  /** Closes the typed maps and the collection (programs, maps, BTF). */
  close(): void;
  [Symbol.dispose](): void;
}

${typedMaps ? `function typedMap<K, V, E extends V | V[]>(map: BpfMap, key: Codec<K>, value: Codec<V>, opened: BpfMap<any, any>[]): BpfMap<K, V, E> {
  const typed = BpfMap.fromId(map.id, { key, value }) as BpfMap<K, V, E>;
  opened.push(typed);
  return typed;
}

` : ""}/** Loads the object: sets constants, creates the maps and loads the programs. */
export function load<P extends ProgramName = ProgramName>(options: LoadOptions<P> = {}): LoadedObjects<P> {
  const { constants, programs, ...collectionOptions } = options;
  const spec = loadSpec();
  setConstants(spec, constants ?? {});
  const collection = Collection.load(spec, programs ? { ...collectionOptions, programs: [...programs] } : collectionOptions);
  const opened: BpfMap<any, any>[] = [];
  try {`);
  lines.push(`    const maps: Maps = {`);
  for (const map of maps) {
    const source = `collection.maps[${JSON.stringify(map.name)}]!`;
    lines.push(map.keyCodec || map.valueCodec
      ? `      ${propertyKey(map.property)}: typedMap<${map.keyType}, ${map.valueType}, ${elementType(map)}>(${source}, ${map.keyCodec ?? `bytes(${spec.maps[map.name]!.keySize})`}, ${map.valueCodec ?? `bytes(${spec.maps[map.name]!.valueSize})`}, opened),`
      : `      ${propertyKey(map.property)}: ${source} as ${mapType(map)},`);
  }
  lines.push(`    };`);
  lines.push(`    const loaded = collection.programs as unknown as Pick<Programs, P>;
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      for (const map of opened) map.close();
      collection.close();
    };
    const kernelConstants: Constants = {${readOnlyProperties.map((property) => ` ...${access("maps", property)}.get(0)!`).join(",")} };
    return { collection, maps, programs: loaded, constants: kernelConstants, close, [Symbol.dispose]: close };
  } catch (error) {
    for (const map of opened) map.close();
    collection.close();
    throw error;
  }
}
`);
  // Import only what the module uses, so it compiles under noUnusedLocals.
  const body = lines.join("\n");
  const usage: Record<string, RegExp> = {
    BpfMap: /\bBpfMap\b/, Collection: /\bCollection[.;]/, UsageError: /\bUsageError\(/, loadCollectionSpec: /\bloadCollectionSpec\(/,
    encodeToBuffer: /\bencodeToBuffer\(/, bytes: /\bbytes\(/,
    Codec: /\bCodec</, CollectionOptions: /\bCollectionOptions\b/, CollectionSpec: /\bCollectionSpec\b/, Program: /: Program;/,
  };
  const uses = (name: string) => usage[name]!.test(body);
  const runtimeImports = ["BpfMap", "Collection", "UsageError", "loadCollectionSpec", "encodeToBuffer", "bytes"].filter(uses);
  const typeImports = ["Codec", "CollectionOptions", "CollectionSpec", "Program"].filter(uses);
  const header = [
    `// Generated by \`netbpf gen\` from ${commentText(options.sourceName ?? objectPath)}. Do not edit: run netbpf gen again.`,
    `/* eslint-disable */`,
    `import { ${runtimeImports.join(", ")} } from ${JSON.stringify(importFrom)};`,
    `import type { ${typeImports.join(", ")} } from ${JSON.stringify(importFrom)};`,
  ];
  return `${header.join("\n")}\n${body}`;
}
