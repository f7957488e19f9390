/** Argument checks shared by the btf layer's public functions (not exported from the package). */
import { argumentError, expectInstance } from "../sys/argument-checks.js";
import { Btf } from "./btf.js";

/** Checks that `btf` is a parsed Btf (for the functions that query one). */
export function expectBtf(operation: string, btf: unknown, name = "btf"): Btf {
  return expectInstance(operation, name, btf, Btf, "a Btf (from Btf.parse or loadKernelBtf)");
}

/** Checks that `id` is a type id of `btf`: 0 (void) to typeCount - 1. */
export function expectTypeId(operation: string, btf: Btf, id: unknown, name = "id"): number {
  if (typeof id !== "number" || !btf.has(id)) throw argumentError(operation, name, `a type id of this BTF (0 to ${btf.typeCount - 1})`, id);
  return id as number;
}

/** A parsed Btf and one of its type ids, the first two arguments of most queries. */
export function expectBtfType(operation: string, btf: unknown, id: unknown, btfName = "btf", idName = "id"): number {
  return expectTypeId(operation, expectBtf(operation, btf, btfName), id, idName);
}

/** A type given by id (checked against `btf`) or by name (a string, looked up later). */
export function expectTypeIdOrName(operation: string, btf: Btf, value: unknown, name: string): number | string {
  if (typeof value === "string") return value;
  if (typeof value !== "number") throw argumentError(operation, name, "a type name or a type id", value);
  return expectTypeId(operation, btf, value, name);
}
