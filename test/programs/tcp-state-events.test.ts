import assert from "node:assert/strict";
import { test } from "node:test";
import { disassemble } from "../../src/asm/disassembler.js";
import { decodeTcpRecord, tcpResetSentProgram, tcpSocketEventProgram, TcpRecordKind, tcpStateChangeProgram, type TcpEmitOptions, type TcpKernelOffsets } from "../../src/programs/tcp-state-events.js";
import type { TracepointFormat } from "../../src/sys/tracepoint-format.js";

/** A tracepoint format with the fields the TCP programs read, at made-up offsets (the programs are only generated here, not loaded). */
function format(names: string[]): TracepointFormat {
  return { category: "test", name: "test", fields: new Map(names.map((name, index) => [name, { offset: 8 + 8 * index }])) } as unknown as TracepointFormat;
}

const endpoints = ["skaddr", "sport", "dport", "family", "saddr", "daddr", "saddr_v6", "daddr_v6", "protocol", "oldstate", "newstate", "state"];
const offsets = Object.fromEntries(["bytesAcked", "bytesReceived", "smoothedRtt", "totalRetransmits", "taskFiles", "filesTable", "tableDescriptors", "tableMaximum", "filePrivateData", "socketSock", "taskRealParent", "taskTgid"].map((name, index) => [name, 16 + 8 * index])) as unknown as TcpKernelOffsets;

/** The flags (r4) each bpf_ringbuf_output call (helper 130) of a program passes. */
function outputFlags(build: (emit: TcpEmitOptions) => { instructions: Parameters<typeof disassemble>[0] }, emit: TcpEmitOptions): string[] {
  const lines = disassemble(build(emit).instructions).split("\n").map((line) => line.replace(/^\s*\d+:\s*/, ""));
  const flags: string[] = [];
  lines.forEach((line, index) => {
    if (line !== "call 0x82") return;
    const setting = lines.slice(0, index).reverse().find((earlier) => earlier.startsWith("r4 = "));
    flags.push(setting ?? "none");
  });
  return flags;
}

test("TCP programs commit events with a wake-up by default, and without one (BPF_RB_NO_WAKEUP) when asked", () => {
  const programs: [string, (emit: TcpEmitOptions) => { instructions: Parameters<typeof disassemble>[0] }][] = [
    ["state change", (emit) => tcpStateChangeProgram(format(endpoints), offsets, emit)],
    ["retransmit", (emit) => tcpSocketEventProgram(format(endpoints), TcpRecordKind.Retransmit, emit)],
    ["reset sent", (emit) => tcpResetSentProgram(format(endpoints), emit)],
  ];
  for (const [name, build] of programs) {
    const byDefault = outputFlags(build, {});
    assert.ok(byDefault.length > 0, `${name}: writes to the ring`);
    assert.deepEqual(byDefault, byDefault.map(() => "r4 = 0x0"), `${name}: default flags`);
    const silent = outputFlags(build, { wakeup: false });
    assert.deepEqual(silent, byDefault.map(() => "r4 = 0x1"), `${name}: no wake-up`);
    // (The state-change program once kept its output code after an unconditional jump past it: unreachable, which the verifier refuses.)
    assert.deepEqual(outputFlags(build, { emit: false }), [], `${name}: emit false writes nothing`);
  }
});

test("TCP program generators refuse a wrong format, offsets, kind or emit options, naming the argument", () => {
  const all = format(endpoints);
  assert.throws(() => tcpStateChangeProgram({} as TracepointFormat, offsets), /format must be a TracepointFormat/);
  assert.throws(() => tcpStateChangeProgram(all, { ...offsets, taskTgid: -4 }), /offsets must be TcpKernelOffsets/);
  assert.throws(() => tcpStateChangeProgram(all, offsets, { emitStates: [1, 13] }), /emitOptions\.emitStates\[1\] must be an integer from 1 to 12, got 13/);
  assert.throws(() => tcpResetSentProgram(all, { wakeup: "no" as never }), /emitOptions\.wakeup must be true or false/);
  assert.throws(() => tcpSocketEventProgram(all, TcpRecordKind.State as never), /kind must be one of 3, 5, got 1/);
  assert.throws(() => decodeTcpRecord(Buffer.alloc(100)), /data\.length must be at least 160/);
});
