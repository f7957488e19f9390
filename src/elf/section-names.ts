import { expectString } from "../sys/argument-checks.js";
import { AttachType, ProgramFlag, ProgramType } from "../sys/bpf-constants.js";

/** Where a program in a section attaches, as far as its section name says. */
export type AttachTarget =
  | { kind: "tracepoint"; category: string; name: string }
  | { kind: "rawTracepoint"; name: string }
  /** A kernel function or hook named by BTF: fentry/fexit/fmod_ret/lsm/tp_btf/iter/freplace/struct_ops. */
  | { kind: "btf"; name: string }
  /** kprobe/uprobe/usdt style targets, kept as written. */
  | { kind: "probe"; target: string };

/** What a section name implies for the programs in it (libbpf's conventions). */
export interface SectionProgramKind {
  /** The section name as written. */
  section: string;
  /** The table entry that matched, e.g. "tracepoint+" or "cgroup/connect4". */
  definition: string;
  programType: ProgramType;
  expectedAttachType: AttachType | undefined;
  /** ProgramFlag bits implied by the name (sleepable `.s`, `xdp.frags`). */
  flags: number;
  attachTarget: AttachTarget | undefined;
  /**
   * True when loading needs a BTF id of the attach target (tp_btf, fentry, fexit,
   * fmod_ret, lsm, iter, freplace, struct_ops): recognised, but not loadable by
   * Collection.load.
   */
  needsAttachBtfId: boolean;
  /** True when matched only by the pre-1.0 "prefix followed by anything" rule. */
  legacyMatch: boolean;
}

type TargetParser = (extra: string) => AttachTarget | undefined;

interface SectionDefinition {
  /** Section name, or its first part for entries that take "/extras". */
  name: string;
  /** True when "name/…" is accepted as well as "name" alone (libbpf's "name+"). */
  extras: boolean;
  programType: ProgramType;
  expectedAttachType?: AttachType;
  flags?: number;
  target?: TargetParser;
  needsAttachBtfId?: boolean;
}

const tracepoint: TargetParser = (extra) => {
  const slash = extra.indexOf("/");
  if (slash <= 0 || slash === extra.length - 1) return undefined;
  return { kind: "tracepoint", category: extra.slice(0, slash), name: extra.slice(slash + 1) };
};
const rawTracepoint: TargetParser = (extra) => (extra ? { kind: "rawTracepoint", name: extra } : undefined);
const btfTarget: TargetParser = (extra) => (extra ? { kind: "btf", name: extra } : undefined);
const probe: TargetParser = (extra) => (extra ? { kind: "probe", target: extra } : undefined);

const P = ProgramType;
const A = AttachType;
const sleepable = ProgramFlag.Sleepable;
const frags = ProgramFlag.XdpHasFrags;

function entry(name: string, programType: ProgramType, expectedAttachType?: AttachType, more: Partial<SectionDefinition> = {}): SectionDefinition {
  const extras = name.endsWith("+");
  return { name: extras ? name.slice(0, -1) : name, extras, programType, expectedAttachType, ...more };
}

/** libbpf's section-name table (the names libbpf 1.x accepts). */
const definitions: readonly SectionDefinition[] = [
  entry("socket", P.SocketFilter),
  entry("sk_reuseport/migrate", P.SkReuseport, A.SkReuseportSelectOrMigrate),
  entry("sk_reuseport", P.SkReuseport, A.SkReuseportSelect),
  entry("kprobe+", P.Kprobe, undefined, { target: probe }),
  entry("uprobe+", P.Kprobe, undefined, { target: probe }),
  entry("uprobe.s+", P.Kprobe, undefined, { target: probe, flags: sleepable }),
  entry("kretprobe+", P.Kprobe, undefined, { target: probe }),
  entry("uretprobe+", P.Kprobe, undefined, { target: probe }),
  entry("uretprobe.s+", P.Kprobe, undefined, { target: probe, flags: sleepable }),
  entry("kprobe.multi+", P.Kprobe, A.TraceKprobeMulti, { target: probe }),
  entry("kretprobe.multi+", P.Kprobe, A.TraceKprobeMulti, { target: probe }),
  entry("kprobe.session+", P.Kprobe, A.TraceKprobeSession, { target: probe }),
  entry("uprobe.multi+", P.Kprobe, A.TraceUprobeMulti, { target: probe }),
  entry("uretprobe.multi+", P.Kprobe, A.TraceUprobeMulti, { target: probe }),
  entry("uprobe.multi.s+", P.Kprobe, A.TraceUprobeMulti, { target: probe, flags: sleepable }),
  entry("uretprobe.multi.s+", P.Kprobe, A.TraceUprobeMulti, { target: probe, flags: sleepable }),
  entry("uprobe.session+", P.Kprobe, A.TraceUprobeSession, { target: probe }),
  entry("uprobe.session.s+", P.Kprobe, A.TraceUprobeSession, { target: probe, flags: sleepable }),
  entry("ksyscall+", P.Kprobe, undefined, { target: probe }),
  entry("kretsyscall+", P.Kprobe, undefined, { target: probe }),
  entry("usdt+", P.Kprobe, undefined, { target: probe }),
  entry("usdt.s+", P.Kprobe, undefined, { target: probe, flags: sleepable }),
  entry("tc/ingress", P.SchedCls, A.TcxIngress),
  entry("tc/egress", P.SchedCls, A.TcxEgress),
  entry("tcx/ingress", P.SchedCls, A.TcxIngress),
  entry("tcx/egress", P.SchedCls, A.TcxEgress),
  entry("netkit/primary", P.SchedCls, A.NetkitPrimary),
  entry("netkit/peer", P.SchedCls, A.NetkitPeer),
  entry("tc", P.SchedCls),
  entry("classifier", P.SchedCls),
  entry("action", P.SchedAct),
  entry("tracepoint+", P.Tracepoint, undefined, { target: tracepoint }),
  entry("tp+", P.Tracepoint, undefined, { target: tracepoint }),
  entry("raw_tracepoint+", P.RawTracepoint, undefined, { target: rawTracepoint }),
  entry("raw_tp+", P.RawTracepoint, undefined, { target: rawTracepoint }),
  entry("raw_tracepoint.w+", P.RawTracepointWritable, undefined, { target: rawTracepoint }),
  entry("raw_tp.w+", P.RawTracepointWritable, undefined, { target: rawTracepoint }),
  entry("tp_btf+", P.Tracing, A.TraceRawTp, { target: btfTarget, needsAttachBtfId: true }),
  entry("fentry+", P.Tracing, A.TraceFentry, { target: btfTarget, needsAttachBtfId: true }),
  entry("fmod_ret+", P.Tracing, A.ModifyReturn, { target: btfTarget, needsAttachBtfId: true }),
  entry("fexit+", P.Tracing, A.TraceFexit, { target: btfTarget, needsAttachBtfId: true }),
  entry("fentry.s+", P.Tracing, A.TraceFentry, { target: btfTarget, needsAttachBtfId: true, flags: sleepable }),
  entry("fmod_ret.s+", P.Tracing, A.ModifyReturn, { target: btfTarget, needsAttachBtfId: true, flags: sleepable }),
  entry("fexit.s+", P.Tracing, A.TraceFexit, { target: btfTarget, needsAttachBtfId: true, flags: sleepable }),
  entry("freplace+", P.Ext, undefined, { target: btfTarget, needsAttachBtfId: true }),
  entry("lsm+", P.Lsm, A.LsmMac, { target: btfTarget, needsAttachBtfId: true }),
  entry("lsm.s+", P.Lsm, A.LsmMac, { target: btfTarget, needsAttachBtfId: true, flags: sleepable }),
  entry("lsm_cgroup+", P.Lsm, A.LsmCgroup, { target: btfTarget, needsAttachBtfId: true }),
  entry("iter+", P.Tracing, A.TraceIter, { target: btfTarget, needsAttachBtfId: true }),
  entry("iter.s+", P.Tracing, A.TraceIter, { target: btfTarget, needsAttachBtfId: true, flags: sleepable }),
  entry("syscall", P.Syscall, undefined, { flags: sleepable }),
  entry("xdp.frags/devmap", P.Xdp, A.XdpDevmap, { flags: frags }),
  entry("xdp/devmap", P.Xdp, A.XdpDevmap),
  entry("xdp.frags/cpumap", P.Xdp, A.XdpCpumap, { flags: frags }),
  entry("xdp/cpumap", P.Xdp, A.XdpCpumap),
  entry("xdp.frags", P.Xdp, A.Xdp, { flags: frags }),
  entry("xdp", P.Xdp, A.Xdp),
  entry("perf_event", P.PerfEvent),
  entry("lwt_in", P.LwtIn),
  entry("lwt_out", P.LwtOut),
  entry("lwt_xmit", P.LwtXmit),
  entry("lwt_seg6local", P.LwtSeg6local),
  entry("sockops", P.SockOps, A.CgroupSockOps),
  entry("sk_skb/stream_parser", P.SkSkb, A.SkSkbStreamParser),
  entry("sk_skb/stream_verdict", P.SkSkb, A.SkSkbStreamVerdict),
  entry("sk_skb/verdict", P.SkSkb, A.SkSkbVerdict),
  entry("sk_skb", P.SkSkb),
  entry("sk_msg", P.SkMsg, A.SkMsgVerdict),
  entry("lirc_mode2", P.LircMode2, A.LircMode2),
  entry("flow_dissector", P.FlowDissector, A.FlowDissector),
  entry("cgroup_skb/ingress", P.CgroupSkb, A.CgroupInetIngress),
  entry("cgroup_skb/egress", P.CgroupSkb, A.CgroupInetEgress),
  entry("cgroup/skb", P.CgroupSkb),
  entry("cgroup/sock_create", P.CgroupSock, A.CgroupInetSockCreate),
  entry("cgroup/sock_release", P.CgroupSock, A.CgroupInetSockRelease),
  entry("cgroup/sock", P.CgroupSock, A.CgroupInetSockCreate),
  entry("cgroup/post_bind4", P.CgroupSock, A.CgroupInet4PostBind),
  entry("cgroup/post_bind6", P.CgroupSock, A.CgroupInet6PostBind),
  entry("cgroup/bind4", P.CgroupSockAddr, A.CgroupInet4Bind),
  entry("cgroup/bind6", P.CgroupSockAddr, A.CgroupInet6Bind),
  entry("cgroup/connect4", P.CgroupSockAddr, A.CgroupInet4Connect),
  entry("cgroup/connect6", P.CgroupSockAddr, A.CgroupInet6Connect),
  entry("cgroup/connect_unix", P.CgroupSockAddr, A.CgroupUnixConnect),
  entry("cgroup/sendmsg4", P.CgroupSockAddr, A.CgroupUdp4Sendmsg),
  entry("cgroup/sendmsg6", P.CgroupSockAddr, A.CgroupUdp6Sendmsg),
  entry("cgroup/sendmsg_unix", P.CgroupSockAddr, A.CgroupUnixSendmsg),
  entry("cgroup/recvmsg4", P.CgroupSockAddr, A.CgroupUdp4Recvmsg),
  entry("cgroup/recvmsg6", P.CgroupSockAddr, A.CgroupUdp6Recvmsg),
  entry("cgroup/recvmsg_unix", P.CgroupSockAddr, A.CgroupUnixRecvmsg),
  entry("cgroup/getpeername4", P.CgroupSockAddr, A.CgroupInet4Getpeername),
  entry("cgroup/getpeername6", P.CgroupSockAddr, A.CgroupInet6Getpeername),
  entry("cgroup/getpeername_unix", P.CgroupSockAddr, A.CgroupUnixGetpeername),
  entry("cgroup/getsockname4", P.CgroupSockAddr, A.CgroupInet4Getsockname),
  entry("cgroup/getsockname6", P.CgroupSockAddr, A.CgroupInet6Getsockname),
  entry("cgroup/getsockname_unix", P.CgroupSockAddr, A.CgroupUnixGetsockname),
  entry("cgroup/sysctl", P.CgroupSysctl, A.CgroupSysctl),
  entry("cgroup/getsockopt", P.CgroupSockopt, A.CgroupGetsockopt),
  entry("cgroup/setsockopt", P.CgroupSockopt, A.CgroupSetsockopt),
  entry("cgroup/dev", P.CgroupDevice, A.CgroupDevice),
  entry("struct_ops+", P.StructOps, undefined, { target: btfTarget, needsAttachBtfId: true }),
  entry("struct_ops.s+", P.StructOps, undefined, { target: btfTarget, needsAttachBtfId: true, flags: sleepable }),
  entry("sk_lookup", P.SkLookup, A.SkLookup),
  entry("netfilter", P.Netfilter, A.Netfilter),
];

function describe(section: string, definition: SectionDefinition, extra: string, legacyMatch: boolean): SectionProgramKind {
  return {
    section,
    definition: definition.extras ? `${definition.name}+` : definition.name,
    programType: definition.programType,
    expectedAttachType: definition.expectedAttachType,
    flags: definition.flags ?? 0,
    attachTarget: extra && definition.target ? definition.target(extra) : undefined,
    needsAttachBtfId: definition.needsAttachBtfId ?? false,
    legacyMatch,
  };
}

/**
 * What libbpf would make of a program section name: program type, expected
 * attach type, flags and attach target. Exact names ("tc", "cgroup/connect4")
 * and "name/extras" forms ("tracepoint/sock/inet_sock_set_state") follow
 * libbpf 1.x; names that only start with a known name ("socket/filter1",
 * "xdp_drop") are accepted the way libbpf 0.x did, marked `legacyMatch`.
 * Returns undefined for names libbpf does not know.
 */
export function programKindOfSection(section: string): SectionProgramKind | undefined {
  expectString("find program kind of section", "section", section);
  for (const definition of definitions) {
    if (section === definition.name) return describe(section, definition, "", false);
    if (definition.extras && section.startsWith(`${definition.name}/`)) {
      return describe(section, definition, section.slice(definition.name.length + 1), false);
    }
  }
  let best: SectionDefinition | undefined;
  for (const definition of definitions) {
    if (section.startsWith(definition.name) && (!best || definition.name.length > best.name.length)) best = definition;
  }
  if (!best) return undefined;
  const rest = section.slice(best.name.length);
  return describe(section, best, rest.startsWith("/") ? rest.slice(1) : "", true);
}

/** The section names (libbpf notation: "name+" takes "/extras") this table knows, for messages and docs. */
export function knownSectionNames(): string[] {
  return definitions.map((definition) => (definition.extras ? `${definition.name}+` : definition.name));
}
