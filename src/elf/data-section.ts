import { Btf } from "../btf/btf.js";
import { valueLayout, type FieldLayout, type ValueLayout } from "../btf/value-layout.js";
import { argumentError, expectArray, expectBytes, expectInstance, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";

/** A global variable in a data section (.rodata, .data, .bss, .rodata.*, .data.*). */
export interface DataVariable {
  name: string;
  offset: number;
  size: number;
  /** The variable's type in the object's BTF, when there is BTF. */
  typeId: number | undefined;
}

export type DataValue = number | bigint | boolean | Uint8Array;

/**
 * The initial contents of a data section and the variables in it. Values set
 * here before Collection.load become the map's contents; `.rodata` sections
 * are then frozen, so the program sees them as constants.
 */
export class DataSection {
  readonly section: string;
  /** The section's bytes as the map value (mutable until load). */
  contents: Buffer;
  readonly variables: Readonly<Record<string, DataVariable>>;
  /** True for .rodata sections: frozen after load, read-only to programs. */
  readonly readOnly: boolean;

  constructor(section: string, contents: Buffer, variables: DataVariable[], readOnly: boolean) {
    const operation = "describe data section";
    this.section = expectString(operation, "section", section);
    const bytes = expectBytes(operation, "contents", contents);
    this.contents = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const byName: Record<string, DataVariable> = Object.create(null);
    for (const [index, variable] of expectArray<DataVariable>(operation, "variables", variables).entries()) {
      const name = `variables[${index}]`;
      expectObject(operation, name, variable);
      expectString(operation, `${name}.name`, variable.name);
      expectInteger(operation, `${name}.offset`, variable.offset, 0);
      expectInteger(operation, `${name}.size`, variable.size, 0);
      if (variable.typeId !== undefined) expectInteger(operation, `${name}.typeId`, variable.typeId, 0);
      byName[variable.name] = variable;
    }
    if (typeof readOnly !== "boolean") throw argumentError(operation, "readOnly", "a boolean", readOnly);
    this.variables = byName;
    this.readOnly = readOnly;
  }

  private variable(name: unknown, operation: string): DataVariable {
    const variable = typeof name === "string" ? this.variables[name] : undefined;
    if (!variable) {
      const known = Object.keys(this.variables);
      throw argumentError(operation, "name", known.length ? `the name of a variable in ${this.section} (${known.join(", ")})` : `a variable's name, but ${this.section} has no named variables`, name);
    }
    return variable;
  }

  /**
   * Sets a variable's initial value. Numbers and bigints are written
   * little-endian in the variable's size (1, 2, 4 or 8 bytes); byte arrays
   * must have exactly the variable's size.
   */
  set(name: string, value: DataValue): void {
    const operation = "set global variable";
    const variable = this.variable(name, operation);
    if (typeof value !== "number" && typeof value !== "bigint" && typeof value !== "boolean" && !(value instanceof Uint8Array)) {
      throw argumentError(operation, "value", "a number, bigint, boolean or Uint8Array", value);
    }
    const at = variable.offset;
    if (value instanceof Uint8Array) {
      if (value.length !== variable.size) throw new UsageError(operation, `${name} is ${variable.size} bytes, got ${value.length}`);
      this.contents.set(value, at);
      return;
    }
    const integer = typeof value === "boolean" ? BigInt(value ? 1 : 0) : typeof value === "number" ? toBigInt(value, name) : value;
    const bits = BigInt(variable.size * 8);
    if (![1, 2, 4, 8].includes(variable.size)) throw new UsageError(operation, `${name} is ${variable.size} bytes; set it with a Buffer of that size`);
    if (integer >= 1n << bits || integer < -(1n << (bits - 1n))) throw new UsageError(operation, `${value} does not fit in ${name} (${variable.size} bytes)`);
    const unsigned = BigInt.asUintN(Number(bits), integer);
    for (let i = 0; i < variable.size; i++) this.contents[at + i] = Number((unsigned >> BigInt(i * 8)) & 0xffn);
  }

  /** A variable's current bytes. */
  get(name: string): Buffer {
    const variable = this.variable(name, "get global variable");
    return Buffer.from(this.contents.subarray(variable.offset, variable.offset + variable.size));
  }
}

function toBigInt(value: number, name: string): bigint {
  if (!Number.isInteger(value)) throw new UsageError("set global variable", `${name}: ${value} is not an integer`);
  return BigInt(value);
}

/**
 * The layout of a global data section (.rodata, .data, .bss, …) as a record
 * of its variables (from the symbol table, typed from BTF); variables whose
 * types are unknown or cannot be laid out become bytes.
 */
export function dataSectionLayout(btf: Btf | undefined, section: DataSection, size: number, typeId = 0): ValueLayout & { kind: "record" } {
  const operation = "lay out data section";
  if (btf !== undefined) expectInstance(operation, "btf", btf, Btf, "a Btf (from Btf.parse) or undefined");
  expectInstance(operation, "section", section, DataSection, "a DataSection (from loadCollectionSpec)");
  expectInteger(operation, "size", size, 0);
  expectInteger(operation, "typeId", typeId);
  const fields: FieldLayout[] = [];
  const variables = Object.values(section.variables).sort((a, b) => a.offset - b.offset);
  for (const variable of variables) {
    if (variable.size === 0 || variable.offset + variable.size > size) continue;
    let layout: ValueLayout = { kind: "bytes", size: variable.size };
    if (btf && variable.typeId !== undefined) {
      try {
        const typed = valueLayout(btf, variable.typeId);
        if (typed.size === variable.size) layout = typed;
      } catch {
        // Keep the bytes.
      }
    }
    fields.push({ name: variable.name, offset: variable.offset, layout });
  }
  return { kind: "record", size, union: false, typeId, name: section.section, fields };
}
