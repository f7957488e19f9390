/**
 * Per-packet cost of the user-space interpreter against the kernel running
 * the same XDP filter (BPF_PROG_TEST_RUN with repeats, JIT), in the same run.
 * Run: npm run build && node dist/bench/interpreter.js [rounds]
 */
import { Assembler, R0, R1, R2, R3, R4, R5 } from "../src/asm/assembler.js";
import { xdpContext } from "../src/asm/contexts.js";
import { encode } from "../src/asm/instruction.js";
import { Interpreter } from "../src/asm/interpreter.js";
import { programLoad, programTestRun } from "../src/sys/bpf.js";
import { ProgramType } from "../src/sys/bpf-constants.js";
import { FileDescriptor } from "../src/sys/file-descriptor.js";
import { median } from "./support/statistics.js";

/** XDP: drop IPv4 TCP to ports 1-1023 from 10.0.0.0/8, pass the rest (about 25 instructions per packet). */
function filter() {
  return new Assembler()
    .load("u32", R2, R1, 0)
    .load("u32", R3, R1, 4)
    .mov64(R4, R2).add64(R4, 54)
    .jumpIf(R4, ">", R3, "pass")
    .load("u16", R5, R2, 12).jumpIf(R5, "!=", 0x0008, "pass")
    .load("u8", R5, R2, 23).jumpIf32(R5, "!=", 6, "pass")
    .load("u8", R5, R2, 26).jumpIf32(R5, "!=", 10, "pass")
    .load("u8", R5, R2, 14).and32(R5, 0x0f).leftShift32(R5, 2)
    .add64(R5, R2)
    .mov64(R4, R5).add64(R4, 14 + 4)
    .jumpIf(R4, ">", R3, "pass")
    .load("u16", R0, R5, 14 + 2).toBigEndian(R0, 16)
    .jumpIf32(R0, "==", 0, "pass").jumpIf32(R0, ">=", 1024, "pass")
    .return(1)
    .label("pass").return(2)
    .finish().instructions;
}

const rounds = Number(process.argv[2] ?? 5);
const program = filter();
const packet = Buffer.alloc(64);
packet.writeUInt16BE(0x0800, 12);
packet[14] = 0x45;
packet[23] = 6;
packet[26] = 10;
packet.writeUInt16BE(22, 36);

const interpreter = new Interpreter(program);
const context = xdpContext();
const perRound = 200_000;
const interpreterNanoseconds: number[] = [];
let instructions = 0;
for (let round = 0; round < rounds; round++) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < perRound; i++) instructions = interpreter.run(packet, { context }).instructionCount;
  interpreterNanoseconds.push(Number(process.hrtime.bigint() - start) / perRound);
}

let kernelNanoseconds: number[] = [];
try {
  using fd = new FileDescriptor(programLoad({ programType: ProgramType.Xdp, instructions: encode(program), license: "GPL" }).fd);
  kernelNanoseconds = Array.from({ length: rounds }, () => programTestRun({ programFd: fd.value, dataIn: packet, repeat: 100_000 }).duration);
} catch (error) {
  console.log(`kernel baseline unavailable: ${(error as Error).message}`);
}

const ours = median(interpreterNanoseconds);
console.log(`interpreter: XDP filter, ${instructions} instructions per packet, median of ${rounds} rounds of ${perRound} packets`);
console.log(`  interpreter: ${ours.toFixed(0)} ns/packet (${((instructions / ours) * 1000).toFixed(0)} M instructions/s)`);
if (kernelNanoseconds.length > 0) {
  const kernel = median(kernelNanoseconds);
  console.log(`  kernel (BPF_PROG_TEST_RUN, repeat 100000): ${kernel} ns/packet`);
  console.log(`  ratio interpreter / kernel: ${(ours / Math.max(kernel, 1)).toFixed(1)}x`);
}
