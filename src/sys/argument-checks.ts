/**
 * Checks of what a caller passed to a public function, for callers without
 * TypeScript's checks (plain JavaScript, `any`, JSON input): a clear
 * UsageError naming the argument instead of a bare TypeError later, or a
 * silently wrong result.
 */
import type { Writable } from "node:stream";
import { UsageError } from "./netbpf-error.js";

/** A short description of a value for an error message: `42 (a number)`, `undefined`, `an array`. */
export function describeValue(value: unknown): string {
  if (value === undefined || value === null) return String(value);
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return Buffer.isBuffer(value) ? "a Buffer" : `an object (${value.constructor?.name ?? "Object"})`;
  const text = typeof value === "string" ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value) : String(value);
  return `${text} (a ${typeof value})`;
}

/** The UsageError for an argument that is not what it must be: "<name> must be <expected>, got <value>". */
export function argumentError(operation: string, name: string, expected: string, value: unknown): UsageError {
  return new UsageError(operation, `${name} must be ${expected}, got ${describeValue(value)}`);
}

export function expectString(operation: string, name: string, value: unknown): string {
  if (typeof value !== "string") throw argumentError(operation, name, "a string", value);
  return value;
}

/** An object (not null, not an array); `optional` accepts undefined and gives {}. */
export function expectObject<T extends object>(operation: string, name: string, value: unknown, optional = false): T {
  if (value === undefined && optional) return {} as T;
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw argumentError(operation, name, "an object", value);
  return value as T;
}

/** An integer in [minimum, maximum]. */
export function expectInteger(operation: string, name: string, value: unknown, minimum = Number.MIN_SAFE_INTEGER, maximum = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < minimum || value > maximum) {
    const range = minimum === Number.MIN_SAFE_INTEGER ? "an integer" : maximum === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${minimum}` : `an integer from ${minimum} to ${maximum}`;
    throw argumentError(operation, name, range, value);
  }
  return value;
}

/** Bytes: a Buffer or Uint8Array. */
export function expectBytes(operation: string, name: string, value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw argumentError(operation, name, "a Buffer or Uint8Array", value);
  return value;
}

/** A function (a callback). */
export function expectFunction<T extends (...args: never[]) => unknown>(operation: string, name: string, value: unknown): T {
  if (typeof value !== "function") throw argumentError(operation, name, "a function", value);
  return value as T;
}

/** An array; `optional` accepts undefined and gives []. Checks the array only, not its elements. */
export function expectArray<T>(operation: string, name: string, value: unknown, optional = false): T[] {
  if (value === undefined && optional) return [];
  if (!Array.isArray(value)) throw argumentError(operation, name, "an array", value);
  return value as T[];
}

/** An instance of a class; `what` says where one comes from ("a Program (from Program.load)"). */
export function expectInstance<T>(operation: string, name: string, value: unknown, type: Function & { prototype: T }, what = `a ${type.name}`): T {
  if (!(value instanceof type)) throw argumentError(operation, name, what, value);
  return value as T;
}

/** One of a fixed set of values (strings or numbers). */
export function expectOneOf<T extends string | number>(operation: string, name: string, value: unknown, choices: readonly T[]): T {
  if (!choices.includes(value as T)) throw argumentError(operation, name, `one of ${choices.map((choice) => JSON.stringify(choice)).join(", ")}`, value);
  return value as T;
}

/** A valid Date. */
export function expectDate(operation: string, name: string, value: unknown): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw argumentError(operation, name, "a valid Date", value);
  return value;
}

/** An iterable of values that is not itself a string (a string would be taken character by character). */
export function expectIterable<T>(operation: string, name: string, value: unknown): Iterable<T> {
  if (typeof value !== "object" || value === null || typeof (value as Iterable<T>)[Symbol.iterator] !== "function") {
    throw argumentError(operation, name, "an array or other iterable (not a string)", value);
  }
  return value as Iterable<T>;
}

/** true or false; `optional` accepts undefined (and returns it). */
export function expectBoolean(operation: string, name: string, value: unknown): boolean;
export function expectBoolean(operation: string, name: string, value: unknown, optional: boolean): boolean | undefined;
export function expectBoolean(operation: string, name: string, value: unknown, optional = false): boolean | undefined {
  if (value === undefined && optional) return undefined;
  if (typeof value !== "boolean") throw argumentError(operation, name, "true or false", value);
  return value;
}

/** A Node Writable from a caller (something with write() and on(), like process.stdout); `expected` says what else `name` may be. */
export function expectWritable(operation: string, name: string, value: unknown, expected = "a writable stream"): Writable {
  const candidate = value as Partial<Writable> | null;
  if (typeof candidate !== "object" || candidate === null || typeof candidate.write !== "function" || typeof candidate.on !== "function") {
    throw argumentError(operation, name, expected, value);
  }
  return value as Writable;
}

/** Whether `value` is an integer from 0 to 2^32 - 1 (typeof and a shift: cheap enough per packet). */
export function isUint32(value: unknown): value is number {
  return typeof value === "number" && value >>> 0 === value;
}

/**
 * The UsageError for a byte range [start, start + length) of `source` that is
 * not one, naming the parameter that is wrong as the caller names them.
 */
export function byteRangeError(operation: string, source: unknown, start: unknown, length: unknown, names: readonly [string, string, string] = ["source", "start", "length"]): UsageError {
  const [sourceName, startName, lengthName] = names;
  if (!(source instanceof Uint8Array)) return argumentError(operation, sourceName, "a Buffer or Uint8Array", source);
  if (!isUint32(start) || start > source.length) return argumentError(operation, startName, `an offset in ${sourceName} (0 to ${source.length})`, start);
  return argumentError(operation, lengthName, `a byte count that stays within ${sourceName} (0 to ${source.length - start})`, length);
}

/** A list of TCP/UDP port numbers (1-65535); undefined gives []. */
export function expectPorts(operation: string, name: string, value: unknown): readonly number[] {
  const ports = expectArray<unknown>(operation, name, value, true);
  ports.forEach((port, index) => expectInteger(operation, `${name}[${index}]`, port, 1, 65535));
  return ports as number[];
}
