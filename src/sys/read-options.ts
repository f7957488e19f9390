/**
 * Checks of the options of the event readers' iterations (ring buffer and
 * perf buffer records): an optional AbortSignal and an optional copy flag.
 */
import { expectBoolean, expectInstance, expectObject } from "./argument-checks.js";

export interface ReadOptions {
  signal?: AbortSignal;
  copy?: boolean;
}

/** `options` of a records()/batches() call, checked; `name` is the parameter's name. */
export function expectReadOptions<T extends ReadOptions>(operation: string, options: unknown, name = "options"): T {
  const checked = expectObject<T>(operation, name, options, true);
  if (checked.signal !== undefined) expectInstance(operation, `${name}.signal`, checked.signal, AbortSignal);
  expectBoolean(operation, `${name}.copy`, checked.copy, true);
  return checked;
}
