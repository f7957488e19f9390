import { test } from "node:test";
import assert from "node:assert/strict";
import { BpfMap } from "../../src/core/map.js";
import { u32, u64 } from "../../src/core/codec.js";
import { Program } from "../../src/core/program.js";
import { AttachType, MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { UsageError } from "../../src/sys/errors.js";
import { programQuery } from "../../src/sys/bpf.js";
import { RouteNetlink } from "../../src/sys/netlink.js";
import { ClsactParent, listFilters, listQdiscs } from "../../src/sys/traffic-control.js";
import { attachTcx } from "../../src/link/tcx.js";
import { attachNetlinkTc } from "../../src/link/netlink-tc.js";
import { countingProgram, loadPacketByte, loadPacketHalf } from "../support/bytecode.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { Testbed, udpSenderScript, type Side } from "../support/testbed.js";

const port = 4789;

/** Counts IPv4 UDP packets to `port` seen at L2 (tc), passing everything. */
function udpCounter(map: BpfMap<number, bigint>, name: string, returnValue = 0): Program {
  const instructions = countingProgram(map.fd.value, [
    { load: [loadPacketHalf(12)], register: 0, equals: 0x0800 },
    { load: [loadPacketByte(23)], register: 0, equals: 17 },
    { load: [loadPacketHalf(36)], register: 0, equals: port },
  ], returnValue, { prologue: [Buffer.from("bf16000000000000", "hex")] });
  return Program.load({ name, type: ProgramType.SchedCls, instructions, license: "GPL" });
}

function counterMap(): BpfMap<number, bigint> {
  return BpfMap.create({ type: MapType.Array, key: u32, value: u64, maxEntries: 1 });
}

function send(bed: Testbed, from: Side, to: Side, count: number): void {
  bed.node(from, udpSenderScript(to.address, port, count));
}

test("tcx ingress counts exactly the UDP datagrams sent across a veth pair, and close detaches", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and tc")) return;
  const bed = Testbed.create();
  t.after(() => bed.destroy());
  using map = counterMap();
  using program = udpCounter(map, "tcx_count");
  const link = bed.inNamespace(bed.b, () => attachTcx(program, { interface: bed.b.interface, direction: "ingress" }));
  try {
    assert.equal(link.mechanism, "tcx");
    assert.equal(link.direction, "ingress");
    const info = link.info();
    assert.equal(info.attachType, AttachType.TcxIngress);
    assert.equal(info.ifindex, link.interfaceIndex);
    assert.equal(info.programId, program.info().id);
    send(bed, bed.a, bed.b, 7);
    assert.equal(map.get(0), 7n);
  } finally {
    link.close();
  }
  send(bed, bed.a, bed.b, 3);
  assert.equal(map.get(0), 7n, "no counting after close");
});

test("tcx ordering: before puts a program ahead of another, and both run", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and tc")) return;
  const bed = Testbed.create();
  t.after(() => bed.destroy());
  using map = counterMap();
  using first = udpCounter(map, "tcx_first");
  // TCX_NEXT (-1) hands the packet on to the next program; TCX_PASS (0) ends the chain.
  using second = udpCounter(map, "tcx_second", -1);
  const [one, two] = bed.inNamespace(bed.a, () => {
    const one = attachTcx(first, { interface: bed.a.interface, direction: "egress" });
    const two = attachTcx(second, { interface: bed.a.interface, direction: "egress", before: one });
    return [one, two];
  });
  try {
    const order = bed.inNamespace(bed.a, () => programQuery(one.interfaceIndex, AttachType.TcxEgress).programIds);
    assert.deepEqual(order, [second.info().id, first.info().id]);
    // The one placed first says "next", so both count every datagram.
    send(bed, bed.a, bed.b, 4);
    assert.equal(map.get(0), 8n);
  } finally {
    two.close();
    one.close();
  }
  const left = bed.inNamespace(bed.a, () => programQuery(one.interfaceIndex, AttachType.TcxEgress).programIds);
  assert.deepEqual(left, []);
});

test("netlink tc: clsact + cls_bpf counts traffic, and close removes the filter and the qdisc it created", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and tc")) return;
  const bed = Testbed.create();
  t.after(() => bed.destroy());
  using map = counterMap();
  using program = udpCounter(map, "nl_count");
  const link = bed.inNamespace(bed.b, () => attachTcx(program, { interface: bed.b.interface, direction: "ingress", mechanism: "netlink" }));
  try {
    assert.equal(link.mechanism, "netlink");
    assert.equal(link.isBpfLink, false);
    const filters = bed.inNamespace(bed.b, () => {
      using netlink = RouteNetlink.open();
      return listFilters(netlink, link.interfaceIndex, ClsactParent.Ingress);
    });
    assert.equal(filters.length, 1);
    assert.equal(filters[0]!.programId, program.info().id);
    assert.equal(filters[0]!.directAction, true);
    assert.match(bed.exec(bed.b, ["tc", "qdisc", "show", "dev", bed.b.interface]).stdout, /clsact/);
    send(bed, bed.a, bed.b, 5);
    assert.equal(map.get(0), 5n);
    assert.throws(() => link.pin("/sys/fs/bpf/never"), UsageError);
  } finally {
    link.close();
  }
  assert.doesNotMatch(bed.exec(bed.b, ["tc", "qdisc", "show", "dev", bed.b.interface]).stdout, /clsact/);
  send(bed, bed.a, bed.b, 2);
  assert.equal(map.get(0), 5n);
});

test("netlink tc leaves a clsact qdisc it did not create, and other filters, in place", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and tc")) return;
  const bed = Testbed.create();
  t.after(() => bed.destroy());
  bed.exec(bed.a, ["tc", "qdisc", "add", "dev", bed.a.interface, "clsact"]);
  using map = counterMap();
  using program = udpCounter(map, "nl_egress");
  bed.inNamespace(bed.a, () => {
    using netlink = RouteNetlink.open();
    const mine = attachNetlinkTc(program, { interface: bed.a.interface, direction: "egress", priority: 7, handle: 3 });
    using other = attachNetlinkTc(program, { interface: bed.a.interface, direction: "egress", priority: 9 });
    assert.equal(mine.priority, 7);
    assert.equal(mine.handle, 3);
    assert.equal(listFilters(netlink, mine.interfaceIndex, ClsactParent.Egress).length, 2);
    mine.close();
    const left = listFilters(netlink, other.interfaceIndex, ClsactParent.Egress);
    assert.deepEqual(left.map((f) => f.priority), [9]);
    other.close();
    assert.equal(listFilters(netlink, other.interfaceIndex, ClsactParent.Egress).length, 0);
    assert.ok(listQdiscs(netlink, other.interfaceIndex).some((q) => q.kind === "clsact"), "the pre-existing clsact stays");
  });
});

test("netlink tc: two filters share the clsact qdisc we made; it goes with the last one; update replaces in place", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and tc")) return;
  const bed = Testbed.create();
  t.after(() => bed.destroy());
  using mapA = counterMap();
  using mapB = counterMap();
  using programA = udpCounter(mapA, "nl_a");
  using programB = udpCounter(mapB, "nl_b");
  const [ingress, egress] = bed.inNamespace(bed.b, () => [
    attachNetlinkTc(programA, { interface: bed.b.interface, direction: "ingress" }),
    attachNetlinkTc(programA, { interface: bed.b.interface, direction: "egress" }),
  ]);
  try {
    bed.node(bed.a, udpSenderScript(bed.b.address, port, 2));
    assert.equal(mapA.get(0), 2n);
    ingress.update(programB);
    const filters = bed.inNamespace(bed.b, () => {
      using netlink = RouteNetlink.open();
      return listFilters(netlink, ingress.interfaceIndex, ClsactParent.Ingress);
    });
    assert.deepEqual(filters.map((f) => [f.priority, f.handle, f.programId]), [[ingress.priority, ingress.handle, programB.info().id]]);
    bed.node(bed.a, udpSenderScript(bed.b.address, port, 3));
    assert.deepEqual([mapA.get(0), mapB.get(0)], [2n, 3n]);
    ingress.close();
    assert.match(bed.exec(bed.b, ["tc", "qdisc", "show", "dev", bed.b.interface]).stdout, /clsact/, "still in use by the egress filter");
  } finally {
    ingress.close();
    egress.close();
  }
  assert.doesNotMatch(bed.exec(bed.b, ["tc", "qdisc", "show", "dev", bed.b.interface]).stdout, /clsact/);
});

test("netlink errors carry the kernel's extended ack message", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for tc")) return;
  const bed = Testbed.create();
  t.after(() => bed.destroy());
  using map = counterMap();
  using program = udpCounter(map, "nl_dup");
  bed.inNamespace(bed.a, () => {
    using first = attachNetlinkTc(program, { interface: bed.a.interface, direction: "ingress", priority: 5, handle: 1 });
    assert.equal(first.priority, 5);
    assert.throws(() => attachNetlinkTc(program, { interface: bed.a.interface, direction: "ingress", priority: 5, handle: 1 }),
      (error: Error & { code?: string }) => error.code === "EEXIST" && /kernel says "[^"]+"/.test(error.message));
  });
});

test("tc attach rejects bad input clearly", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  using map = counterMap();
  using program = udpCounter(map, "tc_bad");
  assert.throws(() => attachTcx(program, { interface: "nb-no-such-if", direction: "ingress" }), (e: Error) => e instanceof UsageError && /no network interface named nb-no-such-if/.test(e.message) && /ip link/.test(e.message));
  assert.throws(() => attachTcx(program, { interface: "lo", direction: "sideways" as "ingress" }), UsageError);
  using xdp = Program.load({ type: ProgramType.Xdp, instructions: Buffer.from("b7000000020000009500000000000000", "hex") });
  assert.throws(() => attachTcx(xdp, { interface: "lo", direction: "ingress" }), /must be of type SchedCls/);
  assert.throws(() => attachNetlinkTc(program, { interface: "lo", direction: "ingress", priority: 70000 }), /priority must be an integer from 1 to 65535/);
});
