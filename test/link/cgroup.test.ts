import { test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import net from "node:net";
import { BpfMap } from "../../src/core/map.js";
import { u32, u64 } from "../../src/core/codec.js";
import { Program } from "../../src/core/program.js";
import { AttachType, BpfLinkType, MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { programQuery } from "../../src/sys/bpf.js";
import { UsageError } from "../../src/sys/errors.js";
import { attachCgroup } from "../../src/link/cgroup.js";
import { addImmediate, countingProgram, jumpIfGreater, loadByte, loadHalf, loadWord, movImmediate, movRegister, type Check } from "../support/bytecode.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { TestCgroup } from "../support/cgroup.js";
import { closeSync, constants, openSync } from "node:fs";

function counterMap(): BpfMap<number, bigint> {
  return BpfMap.create({ type: MapType.Array, key: u32, value: u64, maxEntries: 1 });
}

function swap16(value: number): number {
  return ((value & 0xff) << 8) | (value >> 8);
}

/** A UDP port that was free a moment ago. */
async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

async function listener(): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, port: (server.address() as net.AddressInfo).port };
}

const connectScript = (ports: number[]) => `
import dgram from "node:dgram";
import net from "node:net";
const results = [];
for (const port of ${JSON.stringify(ports)}) {
  results.push(await new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1", () => { socket.destroy(); resolve("ok"); });
    socket.on("error", (e) => resolve(e.code));
  }));
}
console.log(JSON.stringify(results));
`;

/** cgroup_skb checks (r2 = data at the IP header, r3 = data_end): IPv4 UDP to `port`. */
function udpToPort(port: number): Check[] {
  return [
    { load: [movRegister(4, 2), addImmediate(4, 24), movImmediate(5, 0), jumpIfGreater(4, 3, 1), movImmediate(5, 1)], register: 5, equals: 1 },
    { load: [loadByte(5, 2, 9)], register: 5, equals: 17 },
    { load: [loadHalf(5, 2, 22)], register: 5, equals: swap16(port) },
  ];
}

test("cgroup skb ingress and egress count a child's UDP datagrams", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for cgroups")) return;
  const cgroup = TestCgroup.create();
  t.after(() => cgroup.destroy());
  const port = await freeUdpPort();
  const prologue = [loadWord(2, 1, 76), loadWord(3, 1, 80)];
  using egressCount = counterMap();
  using ingressCount = counterMap();
  using egress = Program.load({ name: "skb_egress", type: ProgramType.CgroupSkb, instructions: countingProgram(egressCount.fd.value, udpToPort(port), 1, { prologue }) });
  using ingress = Program.load({ name: "skb_ingress", type: ProgramType.CgroupSkb, instructions: countingProgram(ingressCount.fd.value, udpToPort(port), 1, { prologue }) });
  using egressLink = attachCgroup(egress, { cgroup: cgroup.path, attachType: "egress" });
  using ingressLink = attachCgroup(ingress, { cgroup: cgroup.path, attachType: AttachType.CgroupInetIngress });
  assert.equal(egressLink.info().type, BpfLinkType.Cgroup);
  assert.equal(egressLink.info().attachType, AttachType.CgroupInetEgress);
  assert.equal(ingressLink.info().attachType, AttachType.CgroupInetIngress);
  const output = await cgroup.run(`
import dgram from "node:dgram";
const socket = dgram.createSocket("udp4");
let received = 0;
socket.on("message", () => received++);
await new Promise((resolve) => socket.bind(${port}, "127.0.0.1", resolve));
for (let i = 0; i < 6; i++) await new Promise((resolve) => socket.send("x", ${port}, "127.0.0.1", resolve));
await new Promise((resolve) => setTimeout(resolve, 200));
socket.close();
console.log(received);
`);
  assert.equal(Number(output), 6);
  assert.equal(egressCount.get(0), 6n);
  assert.equal(ingressCount.get(0), 6n);
});

test("cgroup connect4 denies connections to one port with EPERM", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for cgroups")) return;
  const cgroup = TestCgroup.create();
  t.after(() => cgroup.destroy());
  const blocked = await listener();
  const allowed = await listener();
  t.after(() => { blocked.server.close(); allowed.server.close(); });
  using denied = counterMap();
  // struct bpf_sock_addr: user_port (network order) at offset 24. Deny (0) and count the blocked port, allow (1) the rest.
  const instructions = countingProgram(denied.fd.value, [{ load: [loadWord(2, 6, 24)], register: 2, equals: swap16(blocked.port) }], 0, {
    prologue: [movRegister(6, 1)], rejectValue: 1,
  });
  using program = Program.load({ name: "deny_port", type: ProgramType.CgroupSockAddr, expectedAttachType: AttachType.CgroupInet4Connect, instructions });
  const link = attachCgroup(program, { cgroup: cgroup.path, attachType: "connect4" });
  try {
    assert.deepEqual(JSON.parse(await cgroup.run(connectScript([blocked.port, allowed.port, blocked.port]))), ["EPERM", "ok", "EPERM"]);
    assert.equal(denied.get(0), 2n);
  } finally {
    link.close();
  }
  assert.deepEqual(JSON.parse(await cgroup.run(connectScript([blocked.port]))), ["ok"]);
});

test("cgroup sock_ops sees each active TCP connection established", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for cgroups")) return;
  const cgroup = TestCgroup.create();
  t.after(() => cgroup.destroy());
  const target = await listener();
  t.after(() => target.server.close());
  using count = counterMap();
  // struct bpf_sock_ops: op at offset 0; BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB = 4.
  const instructions = countingProgram(count.fd.value, [{ load: [loadWord(2, 1, 0)], register: 2, equals: 4 }], 1);
  using program = Program.load({ name: "sockops_count", type: ProgramType.SockOps, instructions });
  using link = attachCgroup(program, { cgroup: cgroup.path, attachType: "sock_ops" });
  assert.deepEqual(JSON.parse(await cgroup.run(connectScript([target.port, target.port, target.port]))), ["ok", "ok", "ok"]);
  assert.equal(count.get(0), 3n);
  assert.equal(link.info().attachType, AttachType.CgroupSockOps);
});

for (const mechanism of ["link", "attach"] as const) {
  test(`cgroup sock_create (${mechanism}) counts UDP sockets created, and close detaches`, async (t) => {
    if (skipUnlessKernel(t, isRoot(), "needs root for cgroups")) return;
    const cgroup = TestCgroup.create();
    t.after(() => cgroup.destroy());
    using count = counterMap();
    // struct bpf_sock: protocol at offset 12.
    const instructions = countingProgram(count.fd.value, [{ load: [loadWord(2, 1, 12)], register: 2, equals: 17 }], 1);
    using program = Program.load({ name: "sock_create", type: ProgramType.CgroupSock, expectedAttachType: AttachType.CgroupInetSockCreate, instructions });
    const link = attachCgroup(program, { cgroup: cgroup.path, attachType: "sock_create", mechanism });
    const script = `
import dgram from "node:dgram";
for (let i = 0; i < 3; i++) {
  const s = dgram.createSocket("udp4");
  await new Promise((resolve) => s.bind(0, "127.0.0.1", resolve));
  s.close();
}
`;
    const directory = openSync(cgroup.path, constants.O_RDONLY | constants.O_DIRECTORY);
    t.after(() => closeSync(directory));
    try {
      assert.equal(link.mechanism, mechanism);
      assert.equal(programQuery(directory, AttachType.CgroupInetSockCreate).programIds.length, 1);
      await cgroup.run(script);
      assert.equal(count.get(0), 3n);
    } finally {
      link.close();
    }
    assert.equal(programQuery(directory, AttachType.CgroupInetSockCreate).programIds.length, 0);
    await cgroup.run(script);
    assert.equal(count.get(0), 3n);
  });
}

test("cgroup attach rejects bad input clearly", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  using program = Program.load({ type: ProgramType.CgroupSkb, instructions: Buffer.from("b7000000010000009500000000000000", "hex") });
  assert.throws(() => attachCgroup(program, { cgroup: "nb-link-no-such-cgroup", attachType: "egress" }), (e: Error) => e instanceof UsageError && /no cgroup at .*nb-link-no-such-cgroup/.test(e.message));
  assert.throws(() => attachCgroup(program, { cgroup: "/", attachType: "sideways" as "egress" }), /unknown cgroup hook "sideways"/);
  assert.throws(() => attachCgroup(program, { cgroup: "/", attachType: "connect4" }), /needs a CgroupSockAddr program/);
});
