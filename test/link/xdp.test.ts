import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { BpfMap } from "../../src/core/map.js";
import { u32, u64 } from "../../src/core/codec.js";
import { Program } from "../../src/core/program.js";
import { BpfLinkType, MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { NetbpfError, UnsupportedFeatureError, UsageError } from "../../src/sys/errors.js";
import { attachXdp } from "../../src/link/xdp.js";
import { Link } from "../../src/link/link.js";
import { countingProgram, jumpIfGreater, loadByte, loadHalf, loadWord, movImmediate, movRegister, addImmediate, type Check } from "../support/bytecode.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { Testbed, udpSenderScript } from "../support/testbed.js";
import { bpffsForTest } from "../support/bpffs.js";

const XDP_DROP = 1;
const XDP_PASS = 2;

function swap16(value: number): number {
  return ((value & 0xff) << 8) | (value >> 8);
}

/** XDP checks for "IPv4 UDP to `port`" with direct packet access (r2 = data, r3 = data_end). */
function udpToPort(port: number): Check[] {
  return [
    { load: [movRegister(4, 2), addImmediate(4, 38), movImmediate(5, 0), jumpIfGreater(4, 3, 1), movImmediate(5, 1)], register: 5, equals: 1 },
    { load: [loadHalf(5, 2, 12)], register: 5, equals: swap16(0x0800) },
    { load: [loadByte(5, 2, 23)], register: 5, equals: 17 },
    { load: [loadHalf(5, 2, 36)], register: 5, equals: swap16(port) },
  ];
}

/** Counts UDP datagrams to `port`; returns `verdict` for them and XDP_PASS for everything else. */
function xdpProgram(map: BpfMap<number, bigint>, port: number, verdict: number): Program {
  const instructions = countingProgram(map.fd.value, udpToPort(port), verdict, {
    prologue: [loadWord(2, 1, 0), loadWord(3, 1, 4)],
    rejectValue: XDP_PASS,
  });
  return Program.load({ name: "xdp_count", type: ProgramType.Xdp, instructions });
}

function counterMap(): BpfMap<number, bigint> {
  return BpfMap.create({ type: MapType.Array, key: u32, value: u64, maxEntries: 1 });
}

test("XDP native on a veth counts the datagrams that arrive", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and XDP")) return;
  const bed = Testbed.create();
  t.after(() => bed.destroy());
  using map = counterMap();
  using program = xdpProgram(map, 5555, XDP_PASS);
  const link = bed.inNamespace(bed.b, () => attachXdp(program, { interface: bed.b.interface }));
  try {
    assert.equal(link.mode, "native");
    assert.equal(link.fellBack, false);
    const info = link.info();
    assert.equal(info.type, BpfLinkType.Xdp);
    assert.equal(info.ifindex, link.interfaceIndex);
    bed.node(bed.a, udpSenderScript(bed.b.address, 5555, 6));
    assert.equal(map.get(0), 6n);
  } finally {
    link.close();
  }
  bed.node(bed.a, udpSenderScript(bed.b.address, 5555, 2));
  assert.equal(map.get(0), 6n, "nothing counted after close");
});

test("XDP on lo falls back to generic and drops exactly the chosen UDP port", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and XDP")) return;
  const bed = Testbed.create();
  t.after(() => bed.destroy());
  using map = counterMap();
  using program = xdpProgram(map, 6001, XDP_DROP);
  bed.inNamespace(bed.a, () => {
    assert.throws(() => attachXdp(program, { interface: "lo", mode: "native" }), UnsupportedFeatureError);
  });
  const link = bed.inNamespace(bed.a, () => attachXdp(program, { interface: "lo" }));
  try {
    assert.equal(link.mode, "generic");
    assert.equal(link.fellBack, true);
    const received = JSON.parse(bed.node(bed.a, `
import dgram from "node:dgram";
const counts = { 6001: 0, 6002: 0 };
const sockets = await Promise.all([6001, 6002].map((port) => new Promise((resolve) => {
  const s = dgram.createSocket("udp4");
  s.on("message", () => counts[port]++);
  s.bind(port, "127.0.0.1", () => resolve(s));
})));
const sender = dgram.createSocket("udp4");
for (let i = 0; i < 5; i++) for (const port of [6001, 6002]) {
  await new Promise((resolve) => sender.send("x", port, "127.0.0.1", resolve));
}
await new Promise((resolve) => setTimeout(resolve, 300));
for (const s of [...sockets, sender]) s.close();
console.log(JSON.stringify(counts));
`));
    assert.deepEqual(received, { 6001: 0, 6002: 5 });
    assert.equal(map.get(0), 5n);
  } finally {
    link.close();
  }
});

test("a pinned XDP link outlives its descriptor until it is unpinned", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces, XDP and bpffs")) return;
  const bed = Testbed.create();
  t.after(() => bed.destroy());
  const bpffs = bpffsForTest();
  t.after(() => bpffs.release());
  const path = join(bpffs.path, `nb-link-pin-${process.pid}-${Date.now()}`);
  using map = counterMap();
  using program = xdpProgram(map, 5556, XDP_PASS);
  const link = bed.inNamespace(bed.b, () => attachXdp(program, { interface: bed.b.interface, mode: "generic" }));
  let id: number;
  try {
    id = link.id;
    link.pin(path);
    assert.equal(link.pinnedPath, path);
  } finally {
    link.close();
  }
  try {
    // The link is still attached: traffic is still counted, and it can be reopened.
    bed.node(bed.a, udpSenderScript(bed.b.address, 5556, 3));
    assert.equal(map.get(0), 3n);
    using reopened = Link.openPinned(path);
    assert.equal(reopened.info().id, id);
    assert.equal(reopened.info().programId, program.info().id);
  } finally {
    // Unpinning removes the file; with no descriptor left the link goes away.
    link.unpin();
  }
  assert.equal(existsSync(path), false);
  await waitFor(() => { try { Link.fromId(id).close(); return false; } catch (e) { return e instanceof NetbpfError; } });
  bed.node(bed.a, udpSenderScript(bed.b.address, 5556, 2));
  assert.equal(map.get(0), 3n, "detached once unpinned");
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail("condition not reached within 2 s");
}

test("XDP attach rejects bad input clearly", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  using map = counterMap();
  using program = xdpProgram(map, 1, XDP_PASS);
  assert.throws(() => attachXdp(program, { interface: "nb-missing0" }), (e: Error) => e instanceof UsageError && /no network interface named nb-missing0/.test(e.message));
  assert.throws(() => attachXdp(program, { interface: "lo", mode: "turbo" as "native" }), /mode must be/);
  assert.throws(() => attachXdp(program, { interface: 0 }), /options.interface must be an integer from 1 to 2147483647, got 0/);
  using tc = Program.load({ type: ProgramType.SchedCls, instructions: Buffer.from("b7000000000000009500000000000000", "hex") });
  assert.throws(() => attachXdp(tc, { interface: "lo" }), /must be of type Xdp/);
});
