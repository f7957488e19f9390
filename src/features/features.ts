/**
 * What this kernel supports, asked of the kernel itself: each probe loads a
 * tiny program, creates a tiny map or makes a harmless attach attempt. Nothing
 * reads the kernel version. Results are cached per process.
 *
 * Every probe is tri-state, like cilium/ebpf's `HaveX` functions (nil,
 * ErrNotSupported or another error): `probeX()` returns `true` (supported),
 * `false` (not supported), or throws a {@link FeatureProbeError} when the
 * kernel's answer does not tell (unknown, with the reason). {@link probeSupport}
 * turns that into a value, `"yes" | "no" | "unknown"`, and {@link probeAll}
 * reports every probe that way: one odd answer never aborts the report.
 */
import { existsSync } from "node:fs";
import { AttachType, MapFlag, MapType, ProgramType } from "../sys/bpf-constants.js";
import { btfLoad, linkCreate, mapCreate, programLoad, rawTracepointOpen } from "../sys/bpf.js";
import { expectFunction, expectInteger } from "../sys/argument-checks.js";
import { NetbpfError, SyscallError, VerifierError } from "../sys/errors.js";
import { libcClose, libcIfNameToIndex } from "../sys/libc.js";
import { tracefsPath } from "../sys/mounts.js";
import { callHelper, instructionSetProbes, mayGotoProbe, minimalIntBtf, returnZero } from "./probe-instructions.js";

/** A probe's answer: supported, not supported, or unknown (the kernel's answer did not tell). */
export type Support = "yes" | "no" | "unknown";

export interface ProbeResult {
  readonly support: Support;
  /** Why the answer is unknown (the kernel's unexpected answer and what it may mean). */
  readonly reason?: string;
}

/** A probe could not tell whether the kernel supports a feature: `cause` is the kernel's unexpected answer. */
export class FeatureProbeError extends NetbpfError {
  readonly feature: string;
  constructor(feature: string, cause: unknown) {
    const detail = cause instanceof NetbpfError ? cause.message : cause instanceof Error ? cause.message : String(cause);
    super(`probe ${feature}`, `the kernel's answer does not tell whether it is supported: ${detail}`, undefined, { cause });
    this.feature = feature;
  }
}

/**
 * Runs a probe and returns its tri-state answer instead of throwing:
 * `probeSupport(() => probeMapType(MapType.Arena))`.
 */
export function probeSupport(probe: () => boolean | undefined): ProbeResult {
  expectFunction("probe support", "probe", probe);
  try {
    return { support: probe() ? "yes" : "no" };
  } catch (error) {
    if (error instanceof FeatureProbeError) return { support: "unknown", reason: error.message };
    throw error;
  }
}

type Answer = { value: boolean } | { error: FeatureProbeError };
const cache = new Map<string, Answer>();

/**
 * Caches a probe's answer. Whatever the probe throws (an errno it does not
 * expect, a missing tracefs, …) becomes an unknown answer: a FeatureProbeError
 * naming `feature`, thrown again to every caller.
 */
function cached(key: string, feature: string, probe: () => boolean): boolean {
  let answer = cache.get(key);
  if (answer === undefined) {
    try {
      answer = { value: probe() };
    } catch (error) {
      answer = { error: error instanceof FeatureProbeError ? error : new FeatureProbeError(feature, error) };
    }
    cache.set(key, answer);
  }
  if ("error" in answer) throw answer.error;
  return answer.value;
}

/** errnos by which the kernel says "no such type, flag or attach kind". */
const notSupportedCodes = ["EINVAL", "ENOTSUPP", "EOPNOTSUPP"];

/**
 * Reads a probe's failed system call: an errno in `yes` means supported, one in
 * `no` means not supported; anything else (EPERM from a security policy, ENOMEM,
 * …) does not tell, and is rethrown to become an unknown answer.
 */
function answerFrom(error: unknown, yes: readonly string[], no: readonly string[] = notSupportedCodes): boolean {
  if (error instanceof SyscallError && !(error instanceof VerifierError)) {
    if (yes.includes(error.code)) return true;
    if (no.includes(error.code)) return false;
  }
  throw error;
}

function programTypeName(type: ProgramType): string {
  return `program type ${ProgramType[type] ?? type}`;
}

function mapTypeName(type: MapType): string {
  return `map type ${MapType[type] ?? type}`;
}

function closing(fd: number): true {
  libcClose(fd);
  return true;
}

/** Attach types a program type needs at load time for the probe to be meaningful. */
const expectedAttachTypes: Partial<Record<ProgramType, AttachType>> = {
  [ProgramType.CgroupSockAddr]: AttachType.CgroupInet4Connect,
  [ProgramType.CgroupSockopt]: AttachType.CgroupGetsockopt,
  [ProgramType.SkLookup]: AttachType.SkLookup,
  [ProgramType.Netfilter]: AttachType.Netfilter,
  [ProgramType.Xdp]: AttachType.Xdp,
};

/** Program types that cannot load without a BTF attach target (fentry, LSM, struct_ops, freplace). */
export const typesNeedingAttachTarget = new Set<ProgramType>([ProgramType.Tracing, ProgramType.Lsm, ProgramType.StructOps, ProgramType.Ext]);

function loadProbe(type: ProgramType, instructions: Buffer, logLevel = 0): number {
  return programLoad({ programType: type, instructions, license: "GPL", expectedAttachType: expectedAttachTypes[type], logLevel }).fd;
}

export function probeProgramType(type: ProgramType): boolean {
  expectInteger("probe program type", "type", type, 0, 0xffff_ffff);
  return cached(`program:${type}`, programTypeName(type), () => {
    if (typesNeedingAttachTarget.has(type)) return probeAttachTargetType(type);
    try {
      return closing(loadProbe(type, returnZero));
    } catch (error) {
      if (error instanceof VerifierError) return true; // the type exists; our tiny program just did not fit it
      return answerFrom(error, []);
    }
  });
}

// fentry/LSM/struct_ops/freplace need a BTF attach id. Without kernel support for
// trampolines the kernel answers ENOTSUPP/EINVAL even with a plausible id.
function probeAttachTargetType(type: ProgramType): boolean {
  try {
    const attachType = type === ProgramType.Tracing ? AttachType.TraceFentry : type === ProgramType.Lsm ? AttachType.LsmMac : undefined;
    const fd = programLoad({ programType: type, instructions: returnZero, license: "GPL", expectedAttachType: attachType, attachBtfId: 1 }).fd;
    return closing(fd);
  } catch (error) {
    if (error instanceof VerifierError) return !/not supported|unsupported|ENOTSUPP/i.test(error.log);
    // ESRCH/ENOENT: the type exists but id 1 is not a valid target.
    return answerFrom(error, ["ESRCH", "ENOENT"]);
  }
}

interface MapProbe {
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  btf?: boolean;
  inner?: boolean;
}

function mapProbeFor(type: MapType): MapProbe | undefined {
  switch (type) {
    case MapType.Unspec:
    case MapType.StructOps:
      return undefined;
    case MapType.LpmTrie: return { keySize: 8, valueSize: 4, maxEntries: 1, flags: MapFlag.NoPrealloc };
    case MapType.StackTrace: return { keySize: 4, valueSize: 8, maxEntries: 1 };
    case MapType.CgroupStorage:
    case MapType.PercpuCgroupStorage: return { keySize: 16, valueSize: 8, maxEntries: 0 };
    case MapType.Queue:
    case MapType.Stack:
    case MapType.BloomFilter: return { keySize: 0, valueSize: 4, maxEntries: 1 };
    case MapType.Ringbuf:
    case MapType.UserRingbuf: return { keySize: 0, valueSize: 0, maxEntries: 4096 };
    case MapType.SkStorage:
    case MapType.InodeStorage:
    case MapType.TaskStorage:
    case MapType.CgrpStorage: return { keySize: 4, valueSize: 4, maxEntries: 0, flags: MapFlag.NoPrealloc, btf: true };
    case MapType.Arena: return { keySize: 0, valueSize: 0, maxEntries: 1, flags: MapFlag.Mmapable };
    case MapType.ArrayOfMaps:
    case MapType.HashOfMaps: return { keySize: 4, valueSize: 4, maxEntries: 1, inner: true };
    case MapType.ReuseportSockarray: return { keySize: 4, valueSize: 8, maxEntries: 1 };
    default: return { keySize: 4, valueSize: 4, maxEntries: 1 };
  }
}

export function probeMapType(type: MapType): boolean | undefined {
  expectInteger("probe map type", "type", type, 0, 0xffff_ffff);
  const probe = mapProbeFor(type);
  if (!probe) return undefined;
  return cached(`map:${type}`, mapTypeName(type), () => {
    const cleanup: number[] = [];
    try {
      let btfFd: number | undefined;
      if (probe.btf) {
        btfFd = btfLoad(minimalIntBtf());
        cleanup.push(btfFd);
      }
      let innerMapFd: number | undefined;
      if (probe.inner) {
        innerMapFd = mapCreate({ mapType: MapType.Array, keySize: 4, valueSize: 4, maxEntries: 1 });
        cleanup.push(innerMapFd);
      }
      const fd = mapCreate({
        mapType: type, keySize: probe.keySize, valueSize: probe.valueSize, maxEntries: probe.maxEntries, flags: probe.flags,
        btfFd, btfKeyTypeId: btfFd ? 1 : undefined, btfValueTypeId: btfFd ? 1 : undefined, innerMapFd,
      });
      return closing(fd);
    } catch (error) {
      return answerFrom(error, [], [...notSupportedCodes, "E2BIG"]);
    } finally {
      cleanup.forEach((fd) => libcClose(fd));
    }
  });
}

/** Whether programs of `type` may call helper number `helper`. */
export function probeHelper(type: ProgramType, helper: number): boolean {
  expectInteger("probe helper", "type", type, 0, 0xffff_ffff);
  expectInteger("probe helper", "helper", helper, 1, 0x7fff_ffff);
  return cached(`helper:${type}:${helper}`, `helper ${helper} for ${programTypeName(type)}`, () => {
    if (!probeProgramType(type) || typesNeedingAttachTarget.has(type)) return false;
    try {
      return closing(loadProbe(type, callHelper(helper), 1));
    } catch (error) {
      if (error instanceof VerifierError) return !/invalid func |unknown func |cannot use helper|not supported/.test(error.log);
      return answerFrom(error, []);
    }
  });
}

export type InstructionSet = "v1" | "v2" | "v3" | "v4";

/** The newest eBPF instruction set version the verifier accepts. */
export function probeInstructionSet(): InstructionSet {
  let best: InstructionSet = "v1";
  for (const version of ["v2", "v3", "v4"] as const) {
    const ok = cached(`isa:${version}`, `instruction set ${version}`, () => {
      try {
        return closing(loadProbe(ProgramType.SocketFilter, instructionSetProbes[version]));
      } catch (error) {
        // An older verifier rejects the newer instructions (a verifier log, EINVAL).
        if (error instanceof VerifierError) return false;
        return answerFrom(error, []);
      }
    });
    if (!ok) break;
    best = version;
  }
  return best;
}

/** Whether the verifier knows `may_goto` (Linux 6.9+), which the filter compiler's protochain loop uses. */
export function probeMayGoto(): boolean {
  return cached("isa:may_goto", "the may_goto instruction", () => {
    try {
      return closing(loadProbe(ProgramType.SocketFilter, mayGotoProbe));
    } catch (error) {
      if (error instanceof VerifierError) return false;
      return answerFrom(error, []);
    }
  });
}

/** tcx: a link_create for BPF_TCX_INGRESS on a non-existent interface fails with ENODEV only where tcx exists. */
export function probeTcx(): boolean {
  return cached("attach:tcx", "tcx links", () => probeLinkOnMissingInterface(ProgramType.SchedCls, AttachType.TcxIngress));
}

/** netkit links: same method as tcx. */
export function probeNetkit(): boolean {
  return cached("attach:netkit", "netkit links", () => probeLinkOnMissingInterface(ProgramType.SchedCls, AttachType.NetkitPrimary));
}

function probeLinkOnMissingInterface(programType: ProgramType, attachType: AttachType): boolean {
  const program = loadProbe(programType, returnZero);
  try {
    return closing(linkCreate({ programFd: program, targetFd: 0x7fffffff, attachType }));
  } catch (error) {
    return answerFrom(error, ["ENODEV"]);
  } finally {
    libcClose(program);
  }
}

/**
 * XDP links: the kernel answers EINVAL both for a missing interface and a
 * missing link type, so this probe attaches an XDP_PASS program to `lo` in
 * generic mode for an instant and detaches it.
 */
export function probeXdpLink(): boolean {
  return cached("attach:xdp-link", "XDP links", () => {
    const program = loadProbe(ProgramType.Xdp, Buffer.from("b700000002000000" + "9500000000000000", "hex"));
    try {
      return closing(linkCreate({ programFd: program, targetFd: libcIfNameToIndex("lo"), attachType: AttachType.Xdp, flags: 2 }));
    } catch (error) {
      return answerFrom(error, ["EBUSY", "EEXIST"]);
    } finally {
      libcClose(program);
    }
  });
}

/** Links on perf events (tracepoints): EBADF for a bad perf fd where the link type exists. */
export function probePerfEventLink(): boolean {
  return cached("attach:perf-event-link", "perf event links", () => {
    const program = loadProbe(ProgramType.Tracepoint, returnZero);
    try {
      return closing(linkCreate({ programFd: program, targetFd: 0x7ffffff0, attachType: AttachType.PerfEvent }));
    } catch (error) {
      return answerFrom(error, ["EBADF"]);
    } finally {
      libcClose(program);
    }
  });
}

/** cgroup links: EBADF for a bad cgroup fd where BPF_LINK_TYPE_CGROUP exists. */
export function probeCgroupLink(): boolean {
  return cached("attach:cgroup-link", "cgroup links", () => {
    const program = loadProbe(ProgramType.CgroupSkb, returnZero);
    try {
      return closing(linkCreate({ programFd: program, targetFd: 0x7ffffff0, attachType: AttachType.CgroupInetIngress }));
    } catch (error) {
      return answerFrom(error, ["EBADF"]);
    } finally {
      libcClose(program);
    }
  });
}

/** Raw tracepoints: attach a no-op program to sys_enter for an instant. */
export function probeRawTracepoint(): boolean {
  return cached("attach:raw-tracepoint", "raw tracepoints", () => {
    if (!probeProgramType(ProgramType.RawTracepoint)) return false;
    const program = loadProbe(ProgramType.RawTracepoint, returnZero);
    try {
      return closing(rawTracepointOpen("sys_enter", program));
    } catch (error) {
      return answerFrom(error, [], [...notSupportedCodes, "ENOENT"]);
    } finally {
      libcClose(program);
    }
  });
}

/** Tracepoints need tracefs with an events directory. */
export function probeTracepoints(): boolean {
  return cached("attach:tracepoint", "tracepoints", () => {
    try {
      return existsSync(`${tracefsPath()}/events/sock/inet_sock_set_state/id`);
    } catch {
      return false;
    }
  });
}

/** kprobes need the kprobe PMU (perf_event_open type from sysfs). */
export function probeKprobes(): boolean {
  return cached("attach:kprobe", "kprobes", () => existsSync("/sys/bus/event_source/devices/kprobe/type"));
}

export function probeKernelBtf(): boolean {
  return existsSync("/sys/kernel/btf/vmlinux");
}

/** Helpers reported by `netbpf features`: the ones netbpf's own programs rely on. */
export const reportedHelpers: Record<string, number> = {
  map_lookup_elem: 1, map_update_elem: 2, ktime_get_ns: 5, skb_load_bytes: 26, perf_event_output: 25,
  get_current_pid_tgid: 14, get_current_comm: 16, get_socket_cookie: 46, skb_adjust_room: 50,
  ringbuf_output: 130, ringbuf_reserve: 131, ringbuf_submit: 132, ktime_get_boot_ns: 125, loop: 181,
};

export interface FeatureReport {
  instructionSet: InstructionSet;
  /** The may_goto instruction (Linux 6.9+; live `protochain` filters need it). */
  mayGoto: Support;
  kernelBtf: Support;
  programTypes: Record<string, Support>;
  mapTypes: Record<string, Support>;
  attach: Record<string, Support>;
  helpers: Record<string, Record<string, Support>>;
  /** Why each "unknown" answer is unknown, keyed by its place in the report ("mapTypes.Arena"). */
  unknown: Record<string, string>;
}

/** Every probe, as one plain object. A probe that cannot tell is reported "unknown" with its reason; none aborts the report. */
export function probeAll(): FeatureReport {
  const unknown: Record<string, string> = {};
  const answer = (place: string, probe: () => boolean | undefined): Support => {
    const result = probeSupport(probe);
    if (result.reason !== undefined) unknown[place] = result.reason;
    return result.support;
  };
  const programTypes: Record<string, Support> = {};
  for (const [name, value] of Object.entries(ProgramType)) {
    if (typeof value === "number" && value !== ProgramType.Unspec) programTypes[name] = answer(`programTypes.${name}`, () => probeProgramType(value));
  }
  const mapTypes: Record<string, Support> = {};
  for (const [name, value] of Object.entries(MapType)) {
    if (typeof value !== "number" || mapProbeFor(value) === undefined) continue;
    mapTypes[name] = answer(`mapTypes.${name}`, () => probeMapType(value));
  }
  const attachProbes: Record<string, () => boolean> = {
    tcx: probeTcx, xdpLink: probeXdpLink, netkit: probeNetkit, perfEventLink: probePerfEventLink,
    cgroupLink: probeCgroupLink, rawTracepoint: probeRawTracepoint, tracepoint: probeTracepoints, kprobe: probeKprobes,
  };
  const attach: Record<string, Support> = {};
  for (const [name, probe] of Object.entries(attachProbes)) attach[name] = answer(`attach.${name}`, probe);
  const helpers: Record<string, Record<string, Support>> = {};
  for (const type of [ProgramType.SocketFilter, ProgramType.SchedCls, ProgramType.Xdp, ProgramType.Tracepoint, ProgramType.CgroupSkb]) {
    const typeName = ProgramType[type];
    const row: Record<string, Support> = {};
    for (const [name, id] of Object.entries(reportedHelpers)) row[name] = answer(`helpers.${typeName}.${name}`, () => probeHelper(type, id));
    helpers[typeName] = row;
  }
  let instructionSet: InstructionSet = "v1";
  try {
    instructionSet = probeInstructionSet();
  } catch (error) {
    if (!(error instanceof FeatureProbeError)) throw error;
    unknown.instructionSet = error.message;
  }
  const mayGoto = answer("mayGoto", probeMayGoto);
  return { instructionSet, mayGoto, kernelBtf: probeKernelBtf() ? "yes" : "no", programTypes, mapTypes, attach, helpers, unknown };
}
