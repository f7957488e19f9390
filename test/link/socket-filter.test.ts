import { test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import net from "node:net";
import { closeSync, openSync, readFileSync, readlinkSync } from "node:fs";
import { Program } from "../../src/core/program.js";
import { ProgramType } from "../../src/sys/bpf-constants.js";
import { UsageError } from "../../src/sys/errors.js";
import { openPacketSocket } from "../../src/sys/socket.js";
import { attachSocketFilter, socketDescriptor } from "../../src/link/socket-filter.js";
import { exit, jumpIfNotEqual, loadPacketByte, loadPacketHalf, movImmediate, movRegister, program } from "../support/bytecode.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { Testbed, udpSenderScript } from "../support/testbed.js";

const keepAll = 0x40000;

/** Keeps datagrams whose first payload byte is `byte` (a UDP socket's filter sees the packet from its UDP header). */
function firstPayloadByte(byte: number): Program {
  const instructions = program(
    movRegister(6, 1),
    loadPacketByte(8),
    jumpIfNotEqual(0, byte, 2),
    movImmediate(0, keepAll),
    exit(),
    movImmediate(0, 0),
    exit(),
  );
  return Program.load({ name: "first_byte", type: ProgramType.SocketFilter, instructions });
}

function receiveAll(socket: dgram.Socket, messages: string[], port: number, settle = 200): Promise<string[]> {
  const received: string[] = [];
  socket.on("message", (m) => received.push(m.toString()));
  const sender = dgram.createSocket("udp4");
  return (async () => {
    for (const m of messages) await new Promise((resolve) => sender.send(m, port, "127.0.0.1", resolve));
    await new Promise((resolve) => setTimeout(resolve, settle));
    sender.close();
    socket.removeAllListeners("message");
    return received;
  })();
}

test("socket filter on a Node dgram socket drops datagrams the program rejects; close detaches it", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load socket filters")) return;
  using filter = firstPayloadByte(0x41);
  const socket = dgram.createSocket("udp4");
  t.after(() => socket.close());
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const port = socket.address().port;
  const link = attachSocketFilter(filter, socket);
  assert.equal(link.isBpfLink, false);
  assert.ok(link.socketDescriptor > 2);
  let received: string[];
  try {
    received = await receiveAll(socket, ["A1", "B1", "A2", "B2", "A3"], port);
  } finally {
    link.close();
  }
  assert.deepEqual(received.sort(), ["A1", "A2", "A3"]);
  assert.deepEqual((await receiveAll(socket, ["B3", "A4"], port)).sort(), ["A4", "B3"]);
});

test("socket filter update replaces the program on the socket", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load socket filters")) return;
  using onlyA = firstPayloadByte(0x41);
  using onlyB = firstPayloadByte(0x42);
  const socket = dgram.createSocket("udp4");
  t.after(() => socket.close());
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const port = socket.address().port;
  using link = attachSocketFilter(onlyA, socket);
  link.update(onlyB);
  assert.deepEqual((await receiveAll(socket, ["A1", "B1", "B2"], port)).sort(), ["B1", "B2"]);
});

function socketInode(port: number): string | undefined {
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length > 9 && fields[1]!.endsWith(`:${port.toString(16).toUpperCase().padStart(4, "0")}`) && fields[3] === "0A") return fields[9];
  }
  return undefined;
}

test("the descriptor of a net.Server is the listening socket", async (t) => {
  const server = net.createServer();
  t.after(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const fd = socketDescriptor(server);
  assert.equal(readlinkSync(`/proc/self/fd/${fd}`), `socket:[${socketInode(port)}]`);
});

test("socket descriptors that cannot be found are reported clearly", () => {
  const unbound = dgram.createSocket("udp4");
  try {
    assert.throws(() => socketDescriptor(unbound), (e: Error) => e instanceof UsageError && /bind \(dgram\)/.test(e.message));
  } finally {
    unbound.close();
  }
  assert.throws(() => socketDescriptor({}), UsageError);
  assert.throws(() => socketDescriptor(-3), UsageError);
  assert.throws(() => socketDescriptor(null as unknown as object), UsageError);
});

test("attaching to something that is not a socket fails clearly", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load socket filters")) return;
  using filter = firstPayloadByte(0x41);
  const file = openSync("/dev/null", "r");
  try {
    assert.throws(() => attachSocketFilter(filter, file), new RegExp(`descriptor ${file} is not a socket`));
  } finally {
    closeSync(file);
  }
});

test("socket filter on an AF_PACKET socket lets through only UDP to one port", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and packet sockets")) return;
  const bed = Testbed.create();
  t.after(() => bed.destroy());
  const instructions = program(
    movRegister(6, 1),
    loadPacketHalf(12), jumpIfNotEqual(0, 0x0800, 6),
    loadPacketByte(23), jumpIfNotEqual(0, 17, 4),
    loadPacketHalf(36), jumpIfNotEqual(0, 7001, 2),
    movImmediate(0, keepAll), exit(),
    movImmediate(0, 0), exit(),
  );
  using filter = Program.load({ name: "udp_7001", type: ProgramType.SocketFilter, instructions });
  using socket = bed.inNamespace(bed.b, () => openPacketSocket({ interface: bed.b.interface }));
  using link = attachSocketFilter(filter, socket.fd.value);
  socket.drain();
  bed.node(bed.a, udpSenderScript(bed.b.address, 7001, 4, "wanted"));
  bed.node(bed.a, udpSenderScript(bed.b.address, 7002, 3, "other"));
  const packets = socket.drain();
  assert.equal(packets.length, 4);
  for (const p of packets) {
    assert.equal(p.protocol, 0x0800);
    assert.equal(p.interfaceIndex, socket.interfaceIndex);
    assert.equal(p.data.readUInt16BE(36), 7001);
    assert.equal(p.data.subarray(42).toString(), "wanted");
  }
  link.close();
  bed.node(bed.a, udpSenderScript(bed.b.address, 7002, 2, "other"));
  const unfiltered = socket.drain();
  assert.ok(unfiltered.filter((p) => p.data.length >= 38 && p.data.readUInt16BE(36) === 7002).length === 2, "after close the socket sees everything");
});
