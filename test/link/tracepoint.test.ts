import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { arch } from "node:process";
import { BpfMap } from "../../src/core/map.js";
import { u32, u64 } from "../../src/core/codec.js";
import { Program } from "../../src/core/program.js";
import { BpfLinkType, MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { UsageError } from "../../src/sys/errors.js";
import { tracefsPath, tracepointId, perfEventOpen, PerfType, PerfSoftwareEvent, perfEventAttribute } from "../../src/sys/perf-event.js";
import { FileDescriptor } from "../../src/sys/file-descriptor.js";
import { attachTracepoint } from "../../src/link/tracepoint.js";
import { attachRawTracepoint } from "../../src/link/raw-tracepoint.js";
import { Link } from "../../src/link/link.js";
import { call, countingProgram, helperGetCurrentPidTgid, loadDouble, loadHalf, loadWord, movRegister, shiftRightImmediate } from "../support/bytecode.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";

function counterMap(): BpfMap<number, bigint> {
  return BpfMap.create({ type: MapType.Array, key: u32, value: u64, maxEntries: 1 });
}

/** A field's offset in a tracepoint's record, from its tracefs format file. */
function fieldOffset(category: string, name: string, field: string): number {
  const format = readFileSync(join(tracefsPath(), "events", category, name, "format"), "utf8");
  const match = new RegExp(`field:[^;]*\\b${field};\\s*offset:(\\d+);`).exec(format);
  assert.ok(match, `no field ${field} in ${category}:${name}`);
  return Number(match[1]);
}


for (const mechanism of ["link", "ioctl"] as const) test(`tracepoint sock:inet_sock_set_state (${mechanism}) counts the TCP connections made`, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for tracepoints")) return;
  using map = counterMap();
  // Count SYN_SENT transitions towards the listener's port: one per connect().
  const server = net.createServer((s) => s.destroy());
  t.after(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const instructions = countingProgram(map.fd.value, [
    { load: [loadHalf(2, 1, fieldOffset("sock", "inet_sock_set_state", "dport"))], register: 2, equals: port },
    { load: [loadWord(2, 1, fieldOffset("sock", "inet_sock_set_state", "newstate"))], register: 2, equals: 2 },
  ], 0);
  using program = Program.load({ name: "tcp_states", type: ProgramType.Tracepoint, instructions });
  const link = attachTracepoint(program, "sock", "inet_sock_set_state", { mechanism });
  try {
    assert.equal(link.mechanism, mechanism);
    if (mechanism === "link") assert.equal(link.info().type, BpfLinkType.PerfEvent);
    else assert.throws(() => link.info(), /not a BPF link/);
    for (let i = 0; i < 4; i++) {
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect(port, "127.0.0.1", () => { socket.destroy(); resolve(); });
        socket.on("error", reject);
      });
    }
    assert.equal(map.get(0), 4n);
  } finally {
    link.close();
  }
  await new Promise<void>((resolve) => net.connect(port, "127.0.0.1", function (this: net.Socket) { this.destroy(); resolve(); }));
  assert.equal(map.get(0), 4n, "nothing counted after close");
});

test("unknown tracepoints are reported with where to look", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for tracefs")) return;
  using program = Program.load({ type: ProgramType.Tracepoint, instructions: Buffer.from("b7000000000000009500000000000000", "hex") });
  assert.throws(() => attachTracepoint(program, "sock", "no_such_tracepoint"),
    (e: Error) => e instanceof UsageError && /no tracepoint sock:no_such_tracepoint/.test(e.message) && /\/events/.test(e.message));
  assert.throws(() => tracepointId("../../etc", "passwd"), UsageError);
  using wrong = Program.load({ type: ProgramType.SocketFilter, instructions: Buffer.from("b7000000000000009500000000000000", "hex") });
  assert.throws(() => attachTracepoint(wrong, "sock", "inet_sock_set_state"), /must be of type Tracepoint/);
});

const getppid: Record<string, number> = { x64: 110, arm64: 173 };

test("raw tracepoint sys_enter counts this process's getppid calls", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for raw tracepoints")) return;
  using map = counterMap();
  const instructions = countingProgram(map.fd.value, [
    { load: [call(helperGetCurrentPidTgid), shiftRightImmediate(0, 32)], register: 0, equals: process.pid },
    { load: [loadDouble(2, 6, 8)], register: 2, equals: getppid[arch]! },
  ], 0, { prologue: [movRegister(6, 1)] });
  using program = Program.load({ name: "count_getppid", type: ProgramType.RawTracepoint, instructions });
  const link = attachRawTracepoint(program, "sys_enter");
  let id: number;
  try {
    const info = link.info();
    id = info.id;
    assert.equal(info.type, BpfLinkType.RawTracepoint);
    assert.equal(info.tracepointName, "sys_enter");
    const before = map.get(0)!;
    let sum = 0;
    for (let i = 0; i < 25; i++) sum += process.ppid;
    assert.ok(sum > 0);
    assert.equal(map.get(0)! - before, 25n);
  } finally {
    link.close();
  }
  assert.throws(() => Link.fromId(id), /no link with id/);
  const after = map.get(0)!;
  void process.ppid;
  assert.equal(map.get(0), after);
});

test("unknown raw tracepoints are reported clearly", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for raw tracepoints")) return;
  using program = Program.load({ type: ProgramType.RawTracepoint, instructions: Buffer.from("b7000000000000009500000000000000", "hex") });
  assert.throws(() => attachRawTracepoint(program, "nb_no_such_tp"), (e: Error) => e instanceof UsageError && /no raw tracepoint named nb_no_such_tp/.test(e.message));
  assert.throws(() => attachRawTracepoint(program, "sys enter"), UsageError);
});

test("perf_event_open opens a software BPF-output event", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for perf events")) return;
  const attribute = perfEventAttribute({ type: PerfType.Software, config: PerfSoftwareEvent.BpfOutput, sampleType: 1 << 10, samplePeriod: 1, wakeupEvents: 1 });
  assert.equal(attribute.readUInt32LE(0), 1);
  assert.equal(attribute.readUInt32LE(4), attribute.length);
  assert.equal(attribute.readBigUInt64LE(8), 10n);
  using fd = new FileDescriptor(perfEventOpen({ type: PerfType.Software, config: PerfSoftwareEvent.BpfOutput, sampleType: 1 << 10, samplePeriod: 1, wakeupEvents: 1 }, { cpu: 0 }));
  assert.ok(fd.value > 2);
  assert.throws(() => perfEventOpen({ type: PerfType.Tracepoint, config: 0x7ffffff0 }), (e: Error & { code?: string }) => typeof e.code === "string");
});
