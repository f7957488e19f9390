/**
 * The packet capture program: a tc (tcx) program, generated with the
 * Assembler, that runs a pluggable filter and copies what matches into a ring
 * buffer, counting every packet it could not deliver.
 *
 * A ring buffer record needs a size known to the verifier, and the copy of a
 * packet has a size only known at run time. So the program fills a per-CPU
 * scratch record (header + up to snapLength bytes, from bpf_skb_load_bytes,
 * whose length is proven to lie in 1…snapLength) and hands exactly header +
 * captured bytes to bpf_ringbuf_output, which copies them into the ring. The
 * ring then holds records of their real size, not of the largest size, and
 * bpf_ringbuf_output failing (ring full) is counted in a per-CPU counter.
 *
 * The scratch record is one element of a plain array indexed by
 * bpf_get_smp_processor_id() (a per-CPU array is limited to 32 KiB values,
 * too small for tcpdump's 262144-byte snap length). tc programs do not nest
 * on one CPU (egress runs with bottom halves disabled, ingress in softirq), so
 * one record per CPU is enough.
 */
import { Assembler, R0, R1, R2, R3, R4, R6, R7, R8, R9, R10, type AssembledProgram } from "../asm/assembler.js";
import { emitRecordCurrentProcess } from "./current-process.js";
import { makeInstruction, slotIndexes, type Instruction } from "../asm/instruction.js";
import { UsageError } from "../sys/errors.js";
import { addToCounter } from "./add-to-counter.js";

/** __sk_buff fields (UAPI context offsets, rewritten by the verifier). */
const skbLength = 0;
const skbPacketType = 4;
const skbIfindex = 40;
/** bpf_ringbuf_query / bpf_ringbuf_output flags. */
const ringbufAvailableData = 0;
const ringbufNoWakeup = 1;
const ringbufForceWakeup = 2;
/** The ring's own header before each record (length and page offset). */
const ringRecordHeaderSize = 8;
/** TC_ACT_UNSPEC / TCX_NEXT: let the packet go on as if we were not there. */
const continueVerdict = -1;

export const captureRingName = "capture_ring";
export const captureScratchName = "capture_scratch";
export const captureCountersName = "capture_counters";
export const captureProcessesName = "capture_procs";

/** Bytes of the record header before the packet bytes. */
export const captureHeaderSize = 48;

/** Counters per interface slot, in this order (key = slot * counterKinds + kind). */
export const CaptureCounter = {
  /** Packets that reached the program. */
  seen: 0,
  /** Packets the filter accepted. */
  matched: 1,
  /** Accepted packets that could not be put in the ring (ring full). */
  dropped: 2,
} as const;
export const counterKinds = 3;

/**
 * A capture filter plugged into the program. `emit` appends code that starts
 * with the program's context in r1 and ends in one of three ways: jumping to
 * `labels.accept`, jumping to `labels.reject`, or ending the whole program
 * with 0 (what an out-of-bounds LD_ABS does). It may use every register and
 * the whole stack: the capture code after it sets up its own.
 */
export interface CaptureFilterEmitter {
  /** The expression, for documentation and `-d` output. */
  readonly expression: string;
  emit(assembler: Assembler, labels: { accept: string; reject: string }): void;
  /** Instruction index (into what `emit` appended) → comment, for annotated listings. */
  readonly annotations?: ReadonlyMap<number, string>;
  /** Label → instruction index (into what `emit` appended), for annotated listings. */
  readonly labels?: ReadonlyMap<string, number>;
}

export interface CaptureProgramOptions {
  direction: "ingress" | "egress";
  /** Index of the interface in the capture, used to key its counters. */
  interfaceSlot: number;
  /** Most bytes of a packet to copy (1 … 262144). */
  snapLength: number;
  filter?: CaptureFilterEmitter;
  /** Look up the sending process by socket cookie in the `capture_procs` map. */
  processes?: boolean;
  /**
   * With processes: the low 32 bits of the capture's network namespace cookie; a packet's
   * socket created in another namespace gets no process.
   */
  namespace?: number;
  /**
   * Wake the reader only when the ring holds at least this many bytes
   * (BPF_RB_NO_WAKEUP below, BPF_RB_FORCE_WAKEUP above); the reader then
   * polls on a timer too. Default: wake for every record (adaptive).
   */
  wakeupThreshold?: number;
}

export interface CaptureProgram extends AssembledProgram {
  /** Instruction index → comment, for annotated listings. */
  annotations: Map<number, string>;
}

export const maximumSnapLength = 262144;

/** Bytes of one scratch record for a snap length (8-byte multiple). */
export function captureScratchValueSize(snapLength: number): number {
  return Math.ceil((captureHeaderSize + snapLength) / 8) * 8;
}

/**
 * Appends a complete program (as produced by a filter code generator for the
 * skb context) as a filter: its `exit`s become jumps to a check of r0, which
 * goes to `accept` when non-zero. Jump offsets inside it stay valid because
 * an exit and a jump take one slot each.
 */
export function spliceFilterProgram(assembler: Assembler, instructions: readonly Instruction[], labels: { accept: string; reject: string }): void {
  const slots = slotIndexes(instructions);
  const end = slots[instructions.length]!;
  const exitOpcode = 0x95;
  const jumpOpcode = 0x05;
  assembler.raw(...instructions.map((instruction, index) => (instruction.opcode === exitOpcode ? makeInstruction(jumpOpcode, 0, 0, end - slots[index]! - 1, 0) : instruction)));
  assembler.jumpIf(R0, "==", 0, labels.reject).jump(labels.accept);
}

/** Generates the capture program for one interface and direction. */
export function captureProgram(options: CaptureProgramOptions): CaptureProgram {
  const { snapLength, interfaceSlot } = options;
  if (!Number.isInteger(snapLength) || snapLength < 1 || snapLength > maximumSnapLength) {
    throw new UsageError("capture program", `snap length must be 1-${maximumSnapLength}, got ${snapLength}`);
  }
  if (!Number.isInteger(interfaceSlot) || interfaceSlot < 0 || interfaceSlot > 0xffff) {
    throw new UsageError("capture program", `interface slot must be 0-65535, got ${interfaceSlot}`);
  }
  const annotations = new Map<number, string>();
  const filterLabels = new Map<string, number>();
  const a = new Assembler();
  const note = (text: string) => {
    const existing = annotations.get(a.length);
    annotations.set(a.length, existing !== undefined ? `${existing}; ${text}` : text);
  };
  const counterKey = (kind: number) => interfaceSlot * counterKinds + kind;

  /** counters[key] += 1 (per-CPU element; atomic because ingress and egress share it). */
  const count = (kind: number, skip: string) => addToCounter(a, captureCountersName, counterKey(kind), { skip });

  note("save the context; count the packet as seen");
  a.mov64(R6, R1);
  const counted = a.newLabel("counted_");
  count(CaptureCounter.seen, counted);
  a.label(counted).mov64(R1, R6);

  const accept = "accept";
  const reject = "reject";
  if (options.filter) {
    note(`filter: ${options.filter.expression}`);
    const base = a.length;
    options.filter.emit(a, { accept, reject });
    for (const [index, text] of options.filter.annotations ?? []) annotations.set(base + index, text);
    for (const [name, index] of options.filter.labels ?? []) filterLabels.set(`filter_${name}`, base + index);
    a.label(reject);
    note("not selected: the packet continues");
    a.return(continueVerdict);
  } else {
    note("no filter: every packet matches");
  }

  a.label(accept);
  note("count the match; find this CPU's scratch record");
  const matchedCounted = a.newLabel("matched_");
  count(CaptureCounter.matched, matchedCounted);
  a.label(matchedCounted)
    .call("get_smp_processor_id")
    .store("u32", R10, -4, R0)
    .mov64(R2, R10).add64(R2, -4)
    .loadMapFd(R1, captureScratchName)
    .call("map_lookup_elem")
    .jumpIf(R0, "==", 0, "dropped")
    .mov64(R7, R0);

  note("header: original length, captured length = min(length, snap length)");
  a.load("u32", R8, R6, skbLength)
    .store("u32", R7, 12, R8)
    .mov64(R9, R8)
    .jumpIf(R9, "<=", snapLength, "length_ok")
    .mov64(R9, snapLength)
    .label("length_ok")
    .store("u32", R7, 16, R9);
  note("header: time, interface, direction, slot, packet type");
  a.call("ktime_get_ns")
    .store("u64", R7, 0, R0)
    .load("u32", R1, R6, skbIfindex)
    .store("u32", R7, 8, R1)
    .store("u8", R7, 20, options.direction === "ingress" ? 0 : 1)
    .store("u8", R7, 21, 0)
    .store("u16", R7, 22, interfaceSlot)
    .store("u32", R7, 24, 0)
    .load("u32", R1, R6, skbPacketType)
    .store("u32", R7, 28, R1);

  if (options.processes) {
    note("process: the owning socket's cookie → pid and command, when recorded");
    a.mov64(R1, R6)
      .call("get_socket_cookie")
      .jumpIf(R0, "==", 0, "copy")
      .store("u64", R10, -16, R0)
      .mov64(R2, R10).add64(R2, -16)
      .loadMapFd(R1, captureProcessesName)
      .call("map_lookup_elem")
      .jumpIf(R0, "==", 0, "copy");
    if (options.namespace !== undefined) {
      // A socket of another network namespace (a veth peer's sender: the kernel keeps skb->sk
      // across namespaces) is not a local owner: no process for it.
      note("only sockets of the capture's network namespace");
      a.load("u32", R1, R0, 4).jumpIf(R1, "!=", options.namespace, "copy");
    }
    a.load("u32", R1, R0, 0).store("u32", R7, 24, R1)
      .load("u64", R1, R0, 8).store("u64", R7, 32, R1)
      .load("u64", R1, R0, 16).store("u64", R7, 40, R1)
      .store("u8", R7, 21, 1);
  }

  a.label("copy");
  note("copy the captured bytes after the header");
  a.jumpIf(R9, "==", 0, "output")
    .mov64(R1, R6)
    .mov64(R2, 0)
    .mov64(R3, R7).add64(R3, captureHeaderSize)
    .mov64(R4, R9)
    .call("skb_load_bytes");

  a.label("output");
  if (options.wakeupThreshold !== undefined) {
    // One wakeup per batch, not per record: only the record that takes the ring past
    // the threshold wakes the reader; records after it find it awake (or draining).
    note(`wake the reader only with the record that takes the ring past ${options.wakeupThreshold} bytes`);
    a.loadMapFd(R1, captureRingName)
      .mov64(R2, ringbufAvailableData)
      .call("ringbuf_query")
      .mov64(R8, ringbufNoWakeup)
      .jumpIf(R0, ">=", options.wakeupThreshold, "send")
      .add64(R0, R9)
      .add64(R0, captureHeaderSize + ringRecordHeaderSize + 7)
      .jumpIf(R0, "<", options.wakeupThreshold, "send")
      .mov64(R8, ringbufForceWakeup)
      .label("send");
  } else {
    a.mov64(R8, 0);
  }
  note("send header + captured bytes; count a failure (ring full) as a drop");
  a.loadMapFd(R1, captureRingName)
    .mov64(R2, R7)
    .mov64(R3, R9).add64(R3, captureHeaderSize)
    .mov64(R4, R8)
    .call("ringbuf_output")
    .jumpIf(R0, "s<", 0, "dropped")
    .return(continueVerdict);

  a.label("dropped");
  const droppedCounted = a.newLabel("dropped_");
  count(CaptureCounter.dropped, droppedCounted);
  a.label(droppedCounted).return(continueVerdict);

  const assembled = a.finish();
  for (const reference of assembled.references) {
    const existing = annotations.get(reference.instructionIndex);
    const text = `map ${reference.name}`;
    annotations.set(reference.instructionIndex, existing !== undefined ? `${existing}; ${text}` : text);
  }
  for (const [name, index] of filterLabels) if (!assembled.labels.has(name)) assembled.labels.set(name, index);
  return { ...assembled, annotations };
}

/** A decoded ring buffer record. */
export interface CaptureRingRecord {
  /** CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns). */
  monotonicTime: bigint;
  ifindex: number;
  originalLength: number;
  capturedLength: number;
  direction: "ingress" | "egress";
  interfaceSlot: number;
  /** Linux packet type (PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OTHERHOST 3, OUTGOING 4). */
  packetType: number;
  process?: { pid: number; command: string };
  data: Buffer;
}

/** Decodes one record (the buffer may be a view into the ring: data is a view too). */
export function decodeCaptureRecord(record: Buffer): CaptureRingRecord {
  if (record.length < captureHeaderSize) {
    throw new UsageError("decode capture record", `a record has ${record.length} bytes, less than the ${captureHeaderSize}-byte header`);
  }
  const capturedLength = record.readUInt32LE(16);
  const hasProcess = record[21] === 1;
  let process: CaptureRingRecord["process"];
  if (hasProcess) {
    const commandBytes = record.subarray(32, 48);
    const end = commandBytes.indexOf(0);
    process = { pid: record.readUInt32LE(24), command: commandBytes.subarray(0, end < 0 ? 16 : end).toString("utf8") };
  }
  return {
    monotonicTime: record.readBigUInt64LE(0),
    ifindex: record.readUInt32LE(8),
    originalLength: record.readUInt32LE(12),
    capturedLength,
    direction: record[20] === 0 ? "ingress" : "egress",
    interfaceSlot: record.readUInt16LE(22),
    packetType: record.readUInt32LE(28),
    process,
    data: record.subarray(captureHeaderSize, captureHeaderSize + Math.min(capturedLength, record.length - captureHeaderSize)),
  };
}

/** Bytes of a `capture_procs` value: pid (u32), 4 bytes padding, command (16 bytes). */
export const captureProcessValueSize = 24;

/**
 * A cgroup sock_create program that records, for every socket created in the
 * cgroup, its cookie → the creating process (tgid) and command. The capture
 * program looks packets' sockets up in this map. Always allows the socket.
 */
export function socketOwnerProgram(): AssembledProgram {
  const assembler = new Assembler()
    .mov64(R6, R1)
    .call("get_socket_cookie")
    .store("u64", R10, -8, R0);
  return emitRecordCurrentProcess(assembler, captureProcessesName, -8, { namespaceOf: R6 }).return(1).finish();
}
