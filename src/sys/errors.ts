import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { argumentError, expectArray, expectInteger, expectOneOf, expectString } from "./argument-checks.js";
import { NetbpfError } from "./netbpf-error.js";
import { summarizeVerifierLog, type VerifierSummary } from "./verifier-log.js";

export { NetbpfError, UsageError } from "./netbpf-error.js";

/** errno number → symbolic name (EPERM, ENOENT, …), from Node's own table. */
const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}
/** Linux errnos Node's table lacks (uapi asm-generic/errno*.h, and the kernel-internal ones a BPF call can leak, linux/errno.h). */
const linuxOnly: [number, string][] = [
  [44, "ECHRNG"], [45, "EL2NSYNC"], [46, "EL3HLT"], [47, "EL3RST"], [48, "ELNRNG"], [49, "EUNATCH"], [50, "ENOCSI"],
  [51, "EL2HLT"], [52, "EBADE"], [53, "EBADR"], [54, "EXFULL"], [55, "ENOANO"], [56, "EBADRQC"], [57, "EBADSLT"],
  [59, "EBFONT"], [64, "ENONET"], [65, "ENOPKG"], [66, "EREMOTE"], [68, "EADV"], [69, "ESRMNT"], [70, "ECOMM"],
  [73, "EDOTDOT"], [76, "ENOTUNIQ"], [77, "EBADFD"], [78, "EREMCHG"], [79, "ELIBACC"], [80, "ELIBBAD"], [81, "ELIBSCN"],
  [82, "ELIBMAX"], [83, "ELIBEXEC"], [85, "ERESTART"], [86, "ESTRPIPE"], [87, "EUSERS"], [94, "ESOCKTNOSUPPORT"],
  [95, "EOPNOTSUPP"], [96, "EPFNOSUPPORT"], [108, "ESHUTDOWN"], [109, "ETOOMANYREFS"], [112, "EHOSTDOWN"], [117, "EUCLEAN"],
  [118, "ENOTNAM"], [119, "ENAVAIL"], [120, "EISNAM"], [121, "EREMOTEIO"], [123, "ENOMEDIUM"], [124, "EMEDIUMTYPE"],
  [126, "ENOKEY"], [127, "EKEYEXPIRED"], [128, "EKEYREVOKED"], [129, "EKEYREJECTED"], [130, "EOWNERDEAD"],
  [131, "ENOTRECOVERABLE"], [132, "ERFKILL"], [133, "EHWPOISON"],
  [512, "ERESTARTSYS"], [513, "ERESTARTNOINTR"], [514, "ERESTARTNOHAND"], [515, "ENOIOCTLCMD"], [516, "ERESTART_RESTARTBLOCK"],
  [517, "EPROBE_DEFER"], [518, "EOPENSTALE"], [519, "ENOPARAM"], [521, "EBADHANDLE"], [522, "ENOTSYNC"], [523, "EBADCOOKIE"],
  [524, "ENOTSUPP"], [525, "ETOOSMALL"], [526, "ESERVERFAULT"], [527, "EBADTYPE"], [528, "EJUKEBOX"], [529, "EIOCBQUEUED"],
  [530, "ERECALLCONFLICT"], [531, "ENOGRACE"],
];
for (const [value, name] of linuxOnly) if (!errnoNames.has(value) || name === "EOPNOTSUPP") errnoNames.set(value, name);

export function errnoName(errno: number): string {
  expectInteger("name errno", "errno", errno, 0);
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

export function errnoNumber(name: string): number {
  expectString("number errno", "name", name);
  for (const [n, v] of errnoNames) if (v === name) return n;
  throw argumentError("number errno", "name", "an errno name such as \"ENOENT\"", name);
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

/** Capability numbers (linux/capability.h) that netbpf's operations need or that explain a refusal. */
export const capabilityNumbers = {
  CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21, CAP_SYS_RESOURCE: 24, CAP_PERFMON: 38, CAP_BPF: 39,
} as const;
export type CapabilityName = keyof typeof capabilityNumbers;
const capabilityNames = Object.keys(capabilityNumbers) as CapabilityName[];

/** The calling process's effective capability set (CapEff of /proc/self/status), or null where it cannot be read. */
export function effectiveCapabilities(): bigint | null {
  try {
    const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
    return match ? BigInt(`0x${match[1]}`) : null;
  } catch {
    return null;
  }
}

/** Whether the process holds `name` (CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON, as in the kernel). */
export function hasCapability(name: CapabilityName, capabilities: bigint | null = effectiveCapabilities()): boolean | undefined {
  expectOneOf("check capability", "name", name, capabilityNames);
  expectCapabilitySet("check capability", capabilities);
  if (capabilities === null) return undefined;
  const has = (n: number): boolean => ((capabilities >> BigInt(n)) & 1n) === 1n;
  if (has(capabilityNumbers[name])) return true;
  return (name === "CAP_BPF" || name === "CAP_PERFMON") && has(capabilityNumbers.CAP_SYS_ADMIN);
}

/**
 * The hint for EPERM/EACCES. It names the capabilities from `needed` that the
 * process lacks; when it holds them all, the refusal is not about privilege
 * (a security policy such as lockdown or an LSM, a sysctl, a resource limit, or
 * a capability the kernel wants for this one object), and the hint says so
 * instead of telling root to run as root.
 */
export function permissionHint(needed: readonly CapabilityName[] = ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"], capabilities: bigint | null = effectiveCapabilities()): string {
  expectArray("hint permissions", "needed", needed).forEach((name, index) => expectOneOf("hint permissions", `needed[${index}]`, name, capabilityNames));
  expectCapabilitySet("hint permissions", capabilities);
  const missing = needed.filter((name) => hasCapability(name, capabilities) === false);
  if (capabilities === null) return `run as root, or grant ${joinNames(needed)}`;
  if (missing.length > 0) return `the process lacks ${joinNames(missing)}: run as root, or grant ${missing.length === 1 ? "it" : "them"}`;
  const others = hasCapability("CAP_SYS_RESOURCE", capabilities) ? "" : "; this process also lacks CAP_SYS_RESOURCE, which some kernels want for some objects";
  return `the process already has ${joinNames(needed)}, so this is not a missing privilege: the kernel refused for another reason (a security policy such as lockdown or an LSM, a sysctl, or a resource limit${others})`;
}

/** A capability set: a bigint, or null when unknown. */
function expectCapabilitySet(operation: string, capabilities: unknown): void {
  if (typeof capabilities !== "bigint" && capabilities !== null) throw argumentError(operation, "capabilities", "a capability set (a bigint) or null", capabilities);
}

function joinNames(names: readonly string[]): string {
  return names.length <= 1 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

export function defaultHint(code: string): string | undefined {
  expectString("hint errno", "code", code);
  switch (code) {
    case "EPERM":
    case "EACCES":
      return permissionHint();
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
