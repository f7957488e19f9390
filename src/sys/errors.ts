import { constants } from "node:os";

/** errno number → symbolic name (EPERM, ENOENT, …), from Node's own table. */
const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}
/** Linux errnos Node's table lacks. */
errnoNames.set(524, "ENOTSUPP");
errnoNames.set(95, "EOPNOTSUPP");

export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

export function errnoNumber(name: string): number {
  for (const [n, v] of errnoNames) if (v === name) return n;
  throw new RangeError(`unknown errno name ${name}`);
}

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

/** A failed system call: carries the errno and its name. */
export class SyscallError extends NetbpfError {
  readonly errno: number;
  readonly code: string;

  constructor(operation: string, errno: number, hint?: string, detail?: string) {
    const code = errnoName(errno);
    super(operation, detail ? `${detail}: ${code}` : `failed with ${code}`, hint ?? defaultHint(code));
    this.errno = errno;
    this.code = code;
  }
}

/** The kernel lacks something we need (program type, map type, attach kind, helper). */
export class UnsupportedFeatureError extends NetbpfError {
  readonly feature: string;
  constructor(operation: string, feature: string, hint?: string) {
    super(operation, `this kernel does not support ${feature}`, hint ?? "needs a newer kernel or a kernel built with this feature");
    this.feature = feature;
  }
}

/** Bad input from the caller (options, arguments, files). */
export class UsageError extends NetbpfError {}

export function defaultHint(code: string): string | undefined {
  switch (code) {
    case "EPERM":
    case "EACCES":
      return "run as root, or grant CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN";
    case "ENOMEM":
      return "the kernel could not allocate memory for the object; a smaller map or fewer objects may help";
    case "E2BIG":
      return "a size passed to the kernel is larger than it accepts";
    case "EBADF":
      return "the file descriptor is closed or of the wrong kind";
    case "ENOSPC":
      return "the map is full";
    case "EEXIST":
      return "something is already there";
    default:
      return undefined;
  }
}

/** What the verifier's log says went wrong, in one line, and where. */
export interface VerifierSummary {
  /** Index of the failing instruction, when the log names one. */
  instruction: number | undefined;
  /** The failing instruction as the verifier printed it. */
  instructionText: string | undefined;
  /** The verifier's own message. */
  message: string;
}

const bookkeeping = /^(processed \d+ insns|verification time|stack depth|max_states_per_insn|Validating|Func#|func#|mark_precise|last_idx|regs=|parent didn't|cur state:|old state:|\s*$)/;

export function summarizeVerifierLog(log: string): VerifierSummary {
  const lines = log.split("\n").map((l) => l.trimEnd());
  let messageIndex = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!bookkeeping.test(lines[i]!)) {
      messageIndex = i;
      break;
    }
  }
  const message = messageIndex >= 0 ? lines[messageIndex]!.trim() : "the program was rejected";
  // The kernel may print its message on the line of the jump it was verifying.
  const onJump = messageIndex >= 0 ? /^(\d+): \([0-9a-f]{2}\) (.*\bgoto pc[+-]\d+) ([^\d;].*)$/.exec(lines[messageIndex]!) : null;
  if (onJump) return { instruction: Number(onJump[1]), instructionText: onJump[2]!.trim(), message: onJump[3]!.trim() };
  for (let i = messageIndex; i >= 0; i--) {
    const match = /^(\d+): \([0-9a-f]{2}\) (.*)$/.exec(lines[i]!);
    if (match) {
      const text = match[2]!.replace(/\s*;.*$/, "").trim();
      return { instruction: Number(match[1]), instructionText: text, message };
    }
  }
  return { instruction: undefined, instructionText: undefined, message };
}

/** The kernel verifier rejected a program. `log` holds its full log. */
export class VerifierError extends SyscallError {
  readonly log: string;
  readonly summary: VerifierSummary;

  constructor(operation: string, errno: number, code: string, log: string) {
    const summary = summarizeVerifierLog(log);
    const where = summary.instruction !== undefined ? `instruction ${summary.instruction} (${summary.instructionText}): ` : "";
    super(operation, errno, "error.report() explains it; the full verifier log is in error.log", `verifier rejected the program ${where ? `at ${where}` : "with "}${summary.message}`);
    this.log = log;
    this.summary = summary;
  }
}
