import { test } from "node:test";
import assert from "node:assert/strict";
import { Assembler, R0, R1, R2, R6, R7, R8 } from "../../src/asm/assembler.js";
import { encode } from "../../src/asm/instruction.js";
import { disassemble, disassembleInstruction } from "../../src/asm/disassembler.js";
import { runProgram } from "../../src/asm/interpreter.js";
import { programLoad, programTestRun } from "../../src/sys/bpf.js";
import { ProgramType } from "../../src/sys/bpf-constants.js";
import { FileDescriptor } from "../../src/sys/file-descriptor.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { seededRandom } from "./seeded-random.js";
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
