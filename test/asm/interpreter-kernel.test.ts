import { test } from "node:test";
import assert from "node:assert/strict";
import { Assembler, R0, R1, R2, R3, R4, R6, R7, R8, R9, R10 } from "../../src/asm/assembler.js";
import { packetHelpers, socketBufferContext, xdpContext } from "../../src/asm/contexts.js";
import { encode } from "../../src/asm/instruction.js";
import { disassemble, disassembleInstruction } from "../../src/asm/disassembler.js";
import { runProgram } from "../../src/asm/interpreter.js";
import { programLoad, programTestRun } from "../../src/sys/bpf.js";
import { ProgramType } from "../../src/sys/bpf-constants.js";
import { FileDescriptor } from "../../src/sys/file-descriptor.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { seededRandom } from "../support/seeded-random.js";
import { type RandomCase, randomCase } from "./reference-semantics.js";

const casesPerProgram = 250;

/** An XDP program that runs every case and stores each r0 as a u64 into the packet. */
function caseProgram(cases: RandomCase[]): Buffer {
  const builder = new Assembler()
    .load("u32", R6, R1, 0) // xdp_md.data
    .load("u32", R7, R1, 4) // xdp_md.data_end
    .mov64(R8, R6)
    .add64(R8, cases.length * 8)
    .jumpIf(R8, ">", R7, "out");
  cases.forEach((testCase, index) => {
    builder.loadImmediate64(R0, testCase.a).loadImmediate64(R1, testCase.a).loadImmediate64(R2, testCase.b);
    if (testCase.kind === "alu") builder.raw(testCase.instruction);
    else builder.mov64(R0, 1).raw(testCase.instruction).mov64(R0, 0);
    builder.store("u64", R6, index * 8, R0);
  });
  return encode(builder.label("out").return(2).finish().instructions);
}

function kernelResults(cases: RandomCase[]): bigint[] {
  using program = new FileDescriptor(programLoad({ programType: ProgramType.Xdp, instructions: caseProgram(cases), license: "GPL" }).fd);
  const packet = Buffer.alloc(cases.length * 8);
  const result = programTestRun({ programFd: program.value, dataIn: packet, dataOutSize: packet.length });
  assert.equal(result.returnValue, 2, "the program ran to the end");
  return cases.map((_, index) => result.dataOut!.readBigUInt64LE(index * 8));
}

function canLoadXdp(): boolean {
  if (!isRoot()) return false;
  try {
    const fd = programLoad({ programType: ProgramType.Xdp, instructions: encode(new Assembler().return(2).finish().instructions), license: "GPL" }).fd;
    new FileDescriptor(fd).close();
    return true;
  } catch {
    return false;
  }
}

test("interpreter, kernel and the BigInt reference agree on 5,000 seeded random ALU and jump cases", (t) => {
  if (skipUnlessKernel(t, canLoadXdp(), "needs root and BPF_PROG_TYPE_XDP test runs")) return;
  const random = seededRandom(0xbee5);
  let compared = 0;
  for (let batch = 0; batch < 20; batch++) {
    const cases = Array.from({ length: casesPerProgram }, () => randomCase(random, true));
    const kernel = kernelResults(cases);
    cases.forEach((testCase, index) => {
      const builder = new Assembler().loadImmediate64(R0, testCase.a).loadImmediate64(R1, testCase.a).loadImmediate64(R2, testCase.b);
      if (testCase.kind === "alu") builder.raw(testCase.instruction);
      else builder.mov64(R0, 1).raw(testCase.instruction).mov64(R0, 0);
      const ours = runProgram(builder.exit().finish().instructions).returnValue;
      const description = `${disassembleInstruction(testCase.instruction)} with dst=0x${testCase.a.toString(16)} src=0x${testCase.b.toString(16)}`;
      assert.equal(kernel[index], testCase.expected, `kernel vs reference: ${description}`);
      assert.equal(ours, kernel[index], `interpreter vs kernel: ${description}`);
      compared++;
    });
  }
  assert.equal(compared, 5000);
});

test("legacy packet loads agree with the kernel on 400 seeded random socket-filter programs and packets", (t) => {
  if (skipUnlessKernel(t, canLoadXdp(), "needs root and BPF program test runs")) return;
  const random = seededRandom(0x1d);
  const types = ["u8", "u16", "u32"] as const;
  let outOfBounds = 0;
  for (let round = 0; round < 400; round++) {
    const length = 14 + Math.floor(random() * 60);
    const packet = Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));
    const builder = new Assembler().mov64(R6, R1).mov64(R7, 0);
    const loads = 1 + Math.floor(random() * 6);
    for (let i = 0; i < loads; i++) {
      const type = types[Math.floor(random() * types.length)]!;
      const offset = Math.floor(random() * (length - 14 + 8)) - 2;
      if (random() < 0.5) {
        builder.loadPacketAbsolute(type, offset);
      } else {
        const index = Math.floor(random() * 8);
        builder.mov64(R8, index).loadPacketIndirect(type, R8, offset - index);
      }
      builder.mul64(R7, 31).add64(R7, R0);
    }
    const program = builder.mov64(R0, R7).exit().finish().instructions;
    using fd = new FileDescriptor(programLoad({ programType: ProgramType.SocketFilter, instructions: encode(program), license: "GPL" }).fd);
    const kernel = programTestRun({ programFd: fd.value, dataIn: packet }).returnValue;
    // A socket filter's test run starts skb->data at the network header, after the 14-byte Ethernet header.
    const ours = runProgram(program, packet.subarray(14)).returnValue & 0xffff_ffffn;
    if (ours === 0n) outOfBounds++;
    assert.equal(ours, BigInt(kernel), `round ${round}: packet ${packet.toString("hex")}\n${disassemble(program)}`);
  }
  assert.ok(outOfBounds > 20 && outOfBounds < 380, `out-of-bounds cases: ${outOfBounds}`);
});

/**
 * Packets of 14-80 random bytes, some with an IPv4 or IPv6 EtherType (then
 * long enough for that header: the kernel's skb test run refuses shorter ones),
 * some with an 802.3 length field.
 */
function randomPackets(seed: number, count: number): Buffer[] {
  const random = seededRandom(seed);
  const randomBytes = (length: number): number[] => Array.from({ length }, () => Math.floor(random() * 256));
  return Array.from({ length: count }, () => {
    let packet = Buffer.from(randomBytes(14 + Math.floor(random() * 67)));
    const kind = random();
    if (kind < 0.4) packet.writeUInt16BE(0x0800, 12);
    else if (kind < 0.6) packet.writeUInt16BE(0x86dd, 12);
    else if (kind < 0.7) {
      // an 802.3 length field instead of an EtherType, sometimes with a raw-802.3 payload start
      packet.writeUInt16BE(packet.length - 14, 12);
      if (packet.length >= 16 && random() < 0.5) packet.writeUInt16BE(0xffff, 14);
    }
    const minimum = { 0x0800: 34, 0x86dd: 54 }[packet.readUInt16BE(12)] ?? 14;
    if (packet.length < minimum) packet = Buffer.concat([packet, Buffer.from(randomBytes(minimum - packet.length))]);
    return packet;
  });
}

/** Folds the byte at packet offset `offset` into r7 when it lies before data_end (r9), via r2 = data (r8). */
function foldPacketByte(builder: Assembler, offset: number): void {
  const skip = builder.newLabel("short");
  builder.mov64(R2, R8).add64(R2, offset + 1).jumpIf(R2, ">", R9, skip).load("u8", R3, R8, offset).mul64(R7, 33).add64(R7, R3).label(skip);
}

test("tc programs with direct packet access and __sk_buff fields agree with the kernel", (t) => {
  if (skipUnlessKernel(t, canLoadXdp(), "needs root and BPF program test runs")) return;
  const builder = new Assembler()
    .mov64(R6, R1)
    .load("u32", R7, R6, 0) // len
    .load("u32", R3, R6, 16) // protocol (network order)
    .mul64(R7, 31).add64(R7, R3)
    .load("u16", R3, R6, 16)
    .mul64(R7, 31).add64(R7, R3)
    .load("u32", R8, R6, 76) // data
    .load("u32", R9, R6, 80); // data_end
  for (const offset of [0, 12, 13, 14, 23, 30, 40, 60, 79]) foldPacketByte(builder, offset);
  // skb_load_bytes(skb, 20, r10 - 8, 8): 0 or -EFAULT, and the bytes (or zeros)
  builder.mov64(R1, R6).mov64(R2, 20).mov64(R3, R10).add64(R3, -8).mov64(R4, 8).call("skb_load_bytes")
    .mul64(R7, 31).add64(R7, R0)
    .load("u64", R3, R10, -8).xor64(R7, R3)
    .mov64(R3, R7).rightShift64(R3, 32).xor64(R7, R3)
    .mov32(R0, R7).exit();
  const program = builder.finish().instructions;
  using fd = new FileDescriptor(programLoad({ programType: ProgramType.SchedCls, instructions: encode(program), license: "GPL" }).fd);
  for (const packet of randomPackets(7, 200)) {
    const kernel = programTestRun({ programFd: fd.value, dataIn: packet }).returnValue;
    const ours = runProgram(program, Buffer.from(packet), { context: socketBufferContext(), helpers: packetHelpers }).returnValue;
    assert.equal(ours, BigInt(kernel), `packet ${packet.toString("hex")}`);
  }
});

test("XDP programs with direct packet access and xdp_load_bytes agree with the kernel", (t) => {
  if (skipUnlessKernel(t, canLoadXdp(), "needs root and BPF program test runs")) return;
  const builder = new Assembler()
    .mov64(R6, R1)
    .mov64(R7, 0)
    .load("u32", R8, R6, 0) // data
    .load("u32", R9, R6, 4); // data_end
  for (const offset of [0, 5, 12, 13, 20, 33, 47, 70, 79]) foldPacketByte(builder, offset);
  builder.mov64(R1, R6).mov64(R2, 30).mov64(R3, R10).add64(R3, -8).store("u64", R10, -8, 0).mov64(R4, 8).call("xdp_load_bytes")
    .mul64(R7, 31).add64(R7, R0)
    .load("u64", R3, R10, -8).xor64(R7, R3);
  // store the 64-bit result into the first 8 packet bytes (always present: packets have at least 14)
  builder.load("u32", R8, R6, 0).load("u32", R9, R6, 4).mov64(R2, R8).add64(R2, 8).jumpIf(R2, ">", R9, "out").store("u64", R8, 0, R7).label("out").return(2);
  const program = builder.finish().instructions;
  using fd = new FileDescriptor(programLoad({ programType: ProgramType.Xdp, instructions: encode(program), license: "GPL" }).fd);
  for (const packet of randomPackets(8, 200)) {
    const kernel = programTestRun({ programFd: fd.value, dataIn: packet, dataOutSize: packet.length });
    const memory = Buffer.from(packet);
    const ours = runProgram(program, memory, { context: xdpContext(), helpers: packetHelpers });
    assert.equal(ours.returnValue, BigInt(kernel.returnValue));
    assert.equal(memory.toString("hex"), kernel.dataOut!.toString("hex"), `packet ${packet.toString("hex")}`);
  }
});

test("context pointer fields cannot be stored to or loaded in part", () => {
  const store = new Assembler().store("u32", R1, 76, 0).return(0).finish().instructions;
  assert.throws(() => runProgram(store, new Uint8Array(20), { context: socketBufferContext() }), /store into the context pointer field at offset 76/);
  const partial = new Assembler().load("u16", R0, R1, 0).exit().finish().instructions;
  assert.throws(() => runProgram(partial, new Uint8Array(20), { context: xdpContext() }), /2-byte load of the context pointer field/);
  const beyond = new Assembler().load("u32", R0, R1, 24).exit().finish().instructions;
  assert.throws(() => runProgram(beyond, new Uint8Array(20), { context: xdpContext() }), /beyond the end/);
});

test("far jumps the builder turns into gotol load and run the same in the kernel", (t) => {
  if (skipUnlessKernel(t, canLoadXdp(), "needs root and BPF program test runs")) return;
  // The filler must be reachable in the control-flow graph, or the verifier refuses it.
  const builder = new Assembler().mov64(R0, 0).load("u32", R2, R1, 4).jumpIf(R2, "==", 0, "fill").jump("end").label("back").add64(R0, 7).exit().label("fill");
  for (let i = 0; i < 40_000; i++) builder.add64(R0, 1);
  const program = builder.label("end").jump("back").finish().instructions;
  assert.equal(program[3]!.opcode, 0x06, "forward gotol");
  assert.equal(program.at(-1)!.opcode, 0x06, "backward gotol");
  using fd = new FileDescriptor(programLoad({ programType: ProgramType.Xdp, instructions: encode(program), license: "GPL" }).fd);
  const kernel = programTestRun({ programFd: fd.value, dataIn: Buffer.alloc(64) }).returnValue;
  assert.equal(kernel, 7);
  assert.equal(runProgram(program, new Uint8Array(64), { context: xdpContext() }).returnValue, 7n);
});
