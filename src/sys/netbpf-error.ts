/**
 * The base error class and the caller's-mistake error, apart from errors.ts so
 * that argument-checks.ts (which errors.ts uses) needs nothing else from it.
 */

/** Base class of every error netbpf raises on purpose. */
export class NetbpfError extends Error {
  /** What was being done, e.g. "attach tcx" or "map create". */
  readonly operation: string;
  /** What the user can do about it, when we know. */
  readonly hint: string | undefined;

  constructor(operation: string, message: string, hint?: string, options?: ErrorOptions) {
    super(hint ? `${operation}: ${message} (${hint})` : `${operation}: ${message}`, options);
    this.name = new.target.name;
    this.operation = operation;
    this.hint = hint;
  }
}

/** Bad input from the caller (options, arguments, files). */
export class UsageError extends NetbpfError {}
