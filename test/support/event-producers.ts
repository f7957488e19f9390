/**
 * Kernel-side producers for the event reader tests and benchmarks: socket
 * filter programs, run with BPF_PROG_TEST_RUN, that emit one numbered
 * record per run. Hand-written so the tests need neither clang nor the
 * assembler; the asm layer's encoder makes the bytes.
 *
 * Counters map (Array, u32 key, u64 value, 2 entries): [0] the next sequence
 * number (fetched and incremented atomically per run), [1] the records the
 * program could not emit (netbpf's lost-counter convention).
 *
 * Record layout (recordSize bytes, a multiple of 8): u64 at offset 0 is the
 * sequence number; the u64 at every further offset k is sequence + k.
 */
import { BpfMap } from "../../src/core/map.js";
import { Program } from "../../src/core/program.js";
import { MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { encode, makeInstruction, makeWideInstruction, type Instruction } from "../../src/asm/instruction.js";

type Item = { code: number; dst: number; src: number; offset: number | string; imm: number } | { label: string };

const helper = { mapLookupElement: 1, perfEventOutput: 25, ringbufReserve: 131, ringbufSubmit: 132, ringbufDiscard: 133 };
const r0 = 0, r1 = 1, r2 = 2, r3 = 3, r4 = 4, r5 = 5, r6 = 6, r7 = 7, r8 = 8, r9 = 9, r10 = 10;

class Code {
  items: Item[] = [];
  emit(code: number, dst = 0, src = 0, offset: number | string = 0, imm = 0): this {
    this.items.push({ code, dst, src, offset, imm });
    return this;
  }
  label(name: string): this {
    this.items.push({ label: name });
    return this;
  }
  loadMap(dst: number, fd: number): this {
    return this.emit(0x18, dst, 1, 0, fd);
  }
  move(dst: number, imm: number): this { return this.emit(0xb7, dst, 0, 0, imm); }
  moveRegister(dst: number, src: number): this { return this.emit(0xbf, dst, src); }
  add(dst: number, imm: number): this { return this.emit(0x07, dst, 0, 0, imm); }
  call(id: number): this { return this.emit(0x85, 0, 0, 0, id); }
  exit(): this { return this.emit(0x95); }
  /** Looks up counters[index] into r0 and jumps to `missing` when absent. */
  lookupCounter(countersFd: number, index: number, missing: string): this {
    return this.emit(0x62, r10, 0, -4, index).moveRegister(r2, r10).add(r2, -4).loadMap(r1, countersFd)
      .call(helper.mapLookupElement).emit(0x15, r0, 0, missing, 0);
  }
  encode(): Buffer {
    // Label positions in 8-byte slots (a 64-bit immediate load takes two).
    const slotsOf = (item: Item) => ("label" in item ? 0 : item.code === 0x18 ? 2 : 1);
    const positions = new Map<string, number>();
    let position = 0;
    for (const item of this.items) {
      if ("label" in item) positions.set(item.label, position);
      position += slotsOf(item);
    }
    const instructions: Instruction[] = [];
    position = 0;
    for (const item of this.items) {
      if ("label" in item) continue;
      const offset = typeof item.offset === "string" ? positions.get(item.offset)! - position - 1 : item.offset;
      instructions.push(item.code === 0x18 ? makeWideInstruction(item.dst, item.src, item.imm) : makeInstruction(item.code, item.dst, item.src, offset, item.imm));
      position += slotsOf(item);
    }
    return encode(instructions);
  }
}

/** The counters map described above. */
export function createCounters(): BpfMap {
  return BpfMap.create({ type: MapType.Array, keySize: 4, valueSize: 8, maxEntries: 2, name: "nb_rb_counters" });
}

/** Reads counters[index]. */
export function readCounter(counters: BpfMap, index: number): number {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(index);
  return Number(counters.get(key)!.readBigUInt64LE(0));
}

function checkRecordSize(recordSize: number): void {
  if (!Number.isInteger(recordSize) || recordSize < 8 || recordSize % 8 !== 0 || recordSize > 256) {
    throw new RangeError(`recordSize must be a multiple of 8 from 8 to 256, got ${recordSize}`);
  }
}

/** Writes the pattern (sequence in r7) into the record at r8 + base. */
function fillRecord(code: Code, pointer: number, base: number, recordSize: number): void {
  code.emit(0x7b, pointer, r7, base);
  for (let k = 8; k < recordSize; k += 8) code.moveRegister(r9, r7).add(r9, k).emit(0x7b, pointer, r9, base + k);
}

/** Fetches and increments counters[0] into r7, or exits. */
function nextSequence(code: Code, countersFd: number): void {
  code.lookupCounter(countersFd, 0, "exit").moveRegister(r6, r0).move(r7, 1).emit(0xdb, r6, r7, 0, 0x01);
}

export interface RingBufferProducerOptions {
  ringBuffer: BpfMap;
  counters: BpfMap;
  recordSize: number;
  /** Discard (instead of submit) every record whose sequence % discardEvery === discardEvery - 1. */
  discardEvery?: number;
  /** Flags for bpf_ringbuf_submit (1: no wakeup, 2: force wakeup). */
  submitFlags?: number;
}

/** A socket filter that reserves, fills and submits one record per run. */
export function ringBufferProducer(options: RingBufferProducerOptions): Program {
  const { recordSize, discardEvery = 0, submitFlags = 0 } = options;
  checkRecordSize(recordSize);
  const counters = options.counters.fd.value;
  const code = new Code();
  nextSequence(code, counters);
  code.loadMap(r1, options.ringBuffer.fd.value).move(r2, recordSize).move(r3, 0).call(helper.ringbufReserve)
    .emit(0x55, r0, 0, "reserved", 0)
    // reservation failed: counters[1] += 1
    .lookupCounter(counters, 1, "exit").move(r1, 1).emit(0xdb, r0, r1, 0, 0x00).emit(0x05, 0, 0, "exit")
    .label("reserved").moveRegister(r8, r0);
  fillRecord(code, r8, 0, recordSize);
  if (discardEvery > 0) {
    code.moveRegister(r9, r7).emit(0x97, r9, 0, 0, discardEvery).emit(0x55, r9, 0, "submit", discardEvery - 1)
      .moveRegister(r1, r8).move(r2, 0).call(helper.ringbufDiscard).emit(0x05, 0, 0, "exit");
  }
  code.label("submit").moveRegister(r1, r8).move(r2, submitFlags).call(helper.ringbufSubmit);
  code.label("exit").move(r0, 0).exit();
  return Program.load({ type: ProgramType.SocketFilter, instructions: code.encode(), license: "GPL", name: "nb_rb_producer" });
}

export interface PerfEventProducerOptions {
  perfEvents: BpfMap;
  counters: BpfMap;
  recordSize: number;
}

/** A socket filter that sends one record per run with bpf_perf_event_output on the current CPU. */
export function perfEventProducer(options: PerfEventProducerOptions): Program {
  const { recordSize } = options;
  checkRecordSize(recordSize);
  const counters = options.counters.fd.value;
  const code = new Code().moveRegister(r6, r1);
  code.lookupCounter(counters, 0, "exit").move(r7, 1).emit(0xdb, r0, r7, 0, 0x01);
  fillRecord(code, r10, -recordSize, recordSize);
  code.moveRegister(r1, r6).loadMap(r2, options.perfEvents.fd.value)
    .emit(0xb4, r3, 0, 0, -1) // BPF_F_CURRENT_CPU, zero-extended: no packet bytes appended
    .moveRegister(r4, r10).add(r4, -recordSize).move(r5, recordSize).call(helper.perfEventOutput)
    .emit(0x75, r0, 0, "exit", 0) // if r0 s>= 0
    .lookupCounter(counters, 1, "exit").move(r1, 1).emit(0xdb, r0, r1, 0, 0x00);
  code.label("exit").move(r0, 0).exit();
  return Program.load({ type: ProgramType.SocketFilter, instructions: code.encode(), license: "GPL", name: "nb_perf_producer" });
}

/** A packet for the socket filter test runs (its content does not matter). */
export const testPacket = Buffer.alloc(64);

/** The record the producers emit for `sequence`. */
export function expectedRecord(sequence: number, recordSize: number): Buffer {
  const out = Buffer.alloc(recordSize);
  for (let k = 0; k < recordSize; k += 8) out.writeBigUInt64LE(BigInt(sequence + k), k);
  return out;
}

/** Runs `program` `count` times (one record per run). */
export function produce(program: Program, count: number): void {
  program.run({ data: testPacket, repeat: count });
}
