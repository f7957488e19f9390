/**
 * What this kernel supports, asked of the kernel itself: each probe loads a
 * tiny program, creates a tiny map or makes a harmless attach attempt. Nothing
 * reads the kernel version. Results are cached per process.
 */
import { existsSync } from "node:fs";
import { AttachType, MapFlag, MapType, ProgramType } from "../sys/bpf-constants.js";
import { btfLoad, linkCreate, mapCreate, programLoad, rawTracepointOpen } from "../sys/bpf.js";
import { SyscallError, VerifierError } from "../sys/errors.js";
import { libcClose, libcIfNameToIndex } from "../sys/libc.js";
import { tracefsPath } from "../sys/mounts.js";
import { callHelper, instructionSetProbes, minimalIntBtf, returnZero } from "./probe-instructions.js";

export type Support = "yes" | "no";

const cache = new Map<string, boolean>();

function cached(key: string, probe: () => boolean): boolean {
  let value = cache.get(key);
  if (value === undefined) {
    value = probe();
    cache.set(key, value);
  }
  return value;
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
  return cached(`program:${type}`, () => {
    if (typesNeedingAttachTarget.has(type)) return probeAttachTargetType(type);
    try {
      return closing(loadProbe(type, returnZero));
    } catch (error) {
      if (error instanceof VerifierError) return true; // the type exists; our tiny program just did not fit it
      if (error instanceof SyscallError && (error.code === "EINVAL" || error.code === "ENOTSUPP" || error.code === "EOPNOTSUPP")) return false;
      throw error;
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
    if (!(error instanceof SyscallError)) throw error;
    // ESRCH/ENOENT: the type exists but id 1 is not a valid target.
    if (error instanceof VerifierError) return !/not supported|unsupported|ENOTSUPP/i.test(error.log);
    return error.code === "ESRCH" || error.code === "ENOENT";
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
  const probe = mapProbeFor(type);
  if (!probe) return undefined;
  return cached(`map:${type}`, () => {
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
      if (error instanceof SyscallError && ["EINVAL", "ENOTSUPP", "EOPNOTSUPP", "E2BIG"].includes(error.code)) return false;
      throw error;
    } finally {
      cleanup.forEach((fd) => libcClose(fd));
    }
  });
}

/** Whether programs of `type` may call helper number `helper`. */
export function probeHelper(type: ProgramType, helper: number): boolean {
  return cached(`helper:${type}:${helper}`, () => {
    if (!probeProgramType(type) || typesNeedingAttachTarget.has(type)) return false;
    try {
      return closing(loadProbe(type, callHelper(helper), 1));
    } catch (error) {
      if (error instanceof VerifierError) return !/invalid func |unknown func |cannot use helper|not supported/.test(error.log);
      if (error instanceof SyscallError && (error.code === "EINVAL" || error.code === "ENOTSUPP")) return false;
      throw error;
    }
  });
}

export type InstructionSet = "v1" | "v2" | "v3" | "v4";

/** The newest eBPF instruction set version the verifier accepts. */
export function probeInstructionSet(): InstructionSet {
  let best: InstructionSet = "v1";
  for (const version of ["v2", "v3", "v4"] as const) {
    const ok = cached(`isa:${version}`, () => {
      try {
        return closing(loadProbe(ProgramType.SocketFilter, instructionSetProbes[version]));
      } catch (error) {
        if (error instanceof SyscallError) return false;
        throw error;
      }
    });
    if (!ok) break;
    best = version;
  }
  return best;
}

/** tcx: a link_create for BPF_TCX_INGRESS on a non-existent interface fails with ENODEV only where tcx exists. */
export function probeTcx(): boolean {
  return cached("attach:tcx", () => probeLinkOnMissingInterface(ProgramType.SchedCls, AttachType.TcxIngress));
}

/** netkit links: same method as tcx. */
export function probeNetkit(): boolean {
  return cached("attach:netkit", () => probeLinkOnMissingInterface(ProgramType.SchedCls, AttachType.NetkitPrimary));
}

function probeLinkOnMissingInterface(programType: ProgramType, attachType: AttachType): boolean {
  const program = loadProbe(programType, returnZero);
  try {
    return closing(linkCreate({ programFd: program, targetFd: 0x7fffffff, attachType }));
  } catch (error) {
    if (error instanceof SyscallError) return error.code === "ENODEV";
    throw error;
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
  return cached("attach:xdp-link", () => {
    const program = loadProbe(ProgramType.Xdp, Buffer.from("b700000002000000" + "9500000000000000", "hex"));
    try {
      return closing(linkCreate({ programFd: program, targetFd: libcIfNameToIndex("lo"), attachType: AttachType.Xdp, flags: 2 }));
    } catch (error) {
      if (error instanceof SyscallError) return error.code === "EBUSY" || error.code === "EEXIST";
      throw error;
    } finally {
      libcClose(program);
    }
  });
}

/** Links on perf events (tracepoints): EBADF for a bad perf fd where the link type exists. */
export function probePerfEventLink(): boolean {
  return cached("attach:perf-event-link", () => {
    const program = loadProbe(ProgramType.Tracepoint, returnZero);
    try {
      return closing(linkCreate({ programFd: program, targetFd: 0x7ffffff0, attachType: AttachType.PerfEvent }));
    } catch (error) {
      if (error instanceof SyscallError) return error.code === "EBADF";
      throw error;
    } finally {
      libcClose(program);
    }
  });
}

/** cgroup links: EBADF for a bad cgroup fd where BPF_LINK_TYPE_CGROUP exists. */
export function probeCgroupLink(): boolean {
  return cached("attach:cgroup-link", () => {
    const program = loadProbe(ProgramType.CgroupSkb, returnZero);
    try {
      return closing(linkCreate({ programFd: program, targetFd: 0x7ffffff0, attachType: AttachType.CgroupInetIngress }));
    } catch (error) {
      if (error instanceof SyscallError) return error.code === "EBADF";
      throw error;
    } finally {
      libcClose(program);
    }
  });
}

/** Raw tracepoints: attach a no-op program to sys_enter for an instant. */
export function probeRawTracepoint(): boolean {
  return cached("attach:raw-tracepoint", () => {
    let program: number;
    try {
      program = loadProbe(ProgramType.RawTracepoint, returnZero);
    } catch {
      return false;
    }
    try {
      return closing(rawTracepointOpen("sys_enter", program));
    } catch (error) {
      if (error instanceof SyscallError) return false;
      throw error;
    } finally {
      libcClose(program);
    }
  });
}

/** Tracepoints need tracefs with an events directory. */
export function probeTracepoints(): boolean {
  return cached("attach:tracepoint", () => {
    try {
      return existsSync(`${tracefsPath()}/events/sock/inet_sock_set_state/id`);
    } catch {
      return false;
    }
  });
}

/** kprobes need the kprobe PMU (perf_event_open type from sysfs). */
export function probeKprobes(): boolean {
  return cached("attach:kprobe", () => existsSync("/sys/bus/event_source/devices/kprobe/type"));
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
  kernelBtf: boolean;
  programTypes: Record<string, boolean>;
  mapTypes: Record<string, boolean>;
  attach: Record<string, boolean>;
  helpers: Record<string, Record<string, boolean>>;
}

/** Every probe, as one plain object. */
export function probeAll(): FeatureReport {
  const programTypes: Record<string, boolean> = {};
  for (const [name, value] of Object.entries(ProgramType)) {
    if (typeof value === "number" && value !== ProgramType.Unspec) programTypes[name] = probeProgramType(value);
  }
  const mapTypes: Record<string, boolean> = {};
  for (const [name, value] of Object.entries(MapType)) {
    if (typeof value !== "number") continue;
    const supported = probeMapType(value);
    if (supported !== undefined) mapTypes[name] = supported;
  }
  const attach = {
    tcx: probeTcx(), xdpLink: probeXdpLink(), netkit: probeNetkit(), perfEventLink: probePerfEventLink(),
    cgroupLink: probeCgroupLink(), rawTracepoint: probeRawTracepoint(), tracepoint: probeTracepoints(), kprobe: probeKprobes(),
  };
  const helpers: Record<string, Record<string, boolean>> = {};
  for (const type of [ProgramType.SocketFilter, ProgramType.SchedCls, ProgramType.Xdp, ProgramType.Tracepoint, ProgramType.CgroupSkb]) {
    const row: Record<string, boolean> = {};
    for (const [name, id] of Object.entries(reportedHelpers)) row[name] = probeHelper(type, id);
    helpers[ProgramType[type]] = row;
  }
  return { instructionSet: probeInstructionSet(), kernelBtf: probeKernelBtf(), programTypes, mapTypes, attach, helpers };
}
