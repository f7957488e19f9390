import assert from "node:assert/strict";
import { test } from "node:test";
import { programKindOfSection, knownSectionNames } from "../../src/elf/section-names.js";
import { AttachType, ProgramFlag, ProgramType } from "../../src/sys/bpf-constants.js";

test("maps libbpf section names to program and attach types", () => {
  const cases: [string, ProgramType, AttachType | undefined][] = [
    ["socket", ProgramType.SocketFilter, undefined],
    ["tc", ProgramType.SchedCls, undefined],
    ["classifier", ProgramType.SchedCls, undefined],
    ["tc/ingress", ProgramType.SchedCls, AttachType.TcxIngress],
    ["tcx/ingress", ProgramType.SchedCls, AttachType.TcxIngress],
    ["tcx/egress", ProgramType.SchedCls, AttachType.TcxEgress],
    ["xdp", ProgramType.Xdp, AttachType.Xdp],
    ["xdp/devmap", ProgramType.Xdp, AttachType.XdpDevmap],
    ["sk_skb/stream_verdict", ProgramType.SkSkb, AttachType.SkSkbStreamVerdict],
    ["sk_skb/stream_parser", ProgramType.SkSkb, AttachType.SkSkbStreamParser],
    ["sk_msg", ProgramType.SkMsg, AttachType.SkMsgVerdict],
    ["sockops", ProgramType.SockOps, AttachType.CgroupSockOps],
    ["cgroup_skb/ingress", ProgramType.CgroupSkb, AttachType.CgroupInetIngress],
    ["cgroup_skb/egress", ProgramType.CgroupSkb, AttachType.CgroupInetEgress],
    ["cgroup/sock_create", ProgramType.CgroupSock, AttachType.CgroupInetSockCreate],
    ["cgroup/connect4", ProgramType.CgroupSockAddr, AttachType.CgroupInet4Connect],
    ["cgroup/connect6", ProgramType.CgroupSockAddr, AttachType.CgroupInet6Connect],
    ["cgroup/getsockopt", ProgramType.CgroupSockopt, AttachType.CgroupGetsockopt],
    ["sk_lookup", ProgramType.SkLookup, AttachType.SkLookup],
    ["flow_dissector", ProgramType.FlowDissector, AttachType.FlowDissector],
    ["raw_tp/sched_switch", ProgramType.RawTracepoint, undefined],
    ["raw_tracepoint/sched_switch", ProgramType.RawTracepoint, undefined],
    ["tp_btf/sched_switch", ProgramType.Tracing, AttachType.TraceRawTp],
    ["fentry/tcp_connect", ProgramType.Tracing, AttachType.TraceFentry],
    ["fexit/tcp_connect", ProgramType.Tracing, AttachType.TraceFexit],
    ["kprobe/tcp_connect", ProgramType.Kprobe, undefined],
    ["kprobe.multi/tcp_*", ProgramType.Kprobe, AttachType.TraceKprobeMulti],
    ["lsm/socket_bind", ProgramType.Lsm, AttachType.LsmMac],
    ["perf_event", ProgramType.PerfEvent, undefined],
    ["netfilter", ProgramType.Netfilter, AttachType.Netfilter],
  ];
  for (const [section, type, attach] of cases) {
    const kind = programKindOfSection(section);
    assert.ok(kind, section);
    assert.equal(kind.programType, type, section);
    assert.equal(kind.expectedAttachType, attach, section);
    assert.equal(kind.legacyMatch, false, section);
  }
});

test("reads attach targets from the name", () => {
  assert.deepEqual(programKindOfSection("tracepoint/sock/inet_sock_set_state")!.attachTarget, { kind: "tracepoint", category: "sock", name: "inet_sock_set_state" });
  assert.deepEqual(programKindOfSection("tp/tcp/tcp_retransmit_skb")!.attachTarget, { kind: "tracepoint", category: "tcp", name: "tcp_retransmit_skb" });
  assert.deepEqual(programKindOfSection("raw_tp/sched_switch")!.attachTarget, { kind: "rawTracepoint", name: "sched_switch" });
  assert.deepEqual(programKindOfSection("fentry/tcp_connect")!.attachTarget, { kind: "btf", name: "tcp_connect" });
  assert.equal(programKindOfSection("fentry/tcp_connect")!.needsAttachBtfId, true);
  assert.deepEqual(programKindOfSection("kprobe/tcp_v4_connect+4")!.attachTarget, { kind: "probe", target: "tcp_v4_connect+4" });
  assert.equal(programKindOfSection("tracepoint/incomplete")!.attachTarget, undefined);
  assert.equal(programKindOfSection("tracepoint")!.attachTarget, undefined);
});

test("sleepable and frags variants set program flags", () => {
  assert.equal(programKindOfSection("xdp.frags")!.flags, ProgramFlag.XdpHasFrags);
  assert.equal(programKindOfSection("xdp.frags/cpumap")!.expectedAttachType, AttachType.XdpCpumap);
  assert.equal(programKindOfSection("fentry.s/do_sys_open")!.flags, ProgramFlag.Sleepable);
  assert.equal(programKindOfSection("lsm.s/file_open")!.flags, ProgramFlag.Sleepable);
  assert.equal(programKindOfSection("syscall")!.flags, ProgramFlag.Sleepable);
  assert.equal(programKindOfSection("xdp")!.flags, 0);
});

test("exact names do not take extras; legacy prefixes are marked", () => {
  const legacy = programKindOfSection("socket/filter_1");
  assert.ok(legacy);
  assert.equal(legacy.programType, ProgramType.SocketFilter);
  assert.equal(legacy.legacyMatch, true);
  assert.equal(programKindOfSection("xdp_drop")!.programType, ProgramType.Xdp);
  assert.equal(programKindOfSection("xdp_drop")!.legacyMatch, true);
  assert.equal(programKindOfSection("cgroup/connect4x")!.expectedAttachType, AttachType.CgroupInet4Connect);
  assert.equal(programKindOfSection("no_such_section"), undefined);
  assert.equal(programKindOfSection(""), undefined);
  assert.ok(knownSectionNames().includes("tracepoint+"));
  assert.ok(knownSectionNames().includes("socket"));
});

test("a section name is a string", () => {
  assert.equal(programKindOfSection("no-such-kind"), undefined);
  assert.throws(() => programKindOfSection(42 as never), /section must be a string, got 42/);
});
