/**
 * The packet capture program: a tc (tcx) program, generated with the
 * Assembler, that runs a pluggable filter and copies what matches into a ring
 * buffer, counting every packet it could not deliver.
 *
 * A ring buffer reservation needs a size known to the verifier, and the
 * copy of a packet has a size only known at run time. So the program picks,
 * by a binary search over constants, the smallest of a few dozen record
 * sizes (captureRecordClasses) that holds header + captured bytes, reserves
 * it with bpf_ringbuf_reserve, and copies the packet with bpf_skb_load_bytes
 * straight into the reservation (whose length is proven to fit it): one copy
 * per packet, and a record takes at most a quarter more than it needs.
 * A failed reservation (ring full) is counted in a per-CPU counter.
 *
 * Wakeups: by default the kernel's adaptive rule (a record wakes the reader
 * only when the reader had read everything before it). With a wakeup
 * threshold (`capture -w`), records are submitted with BPF_RB_NO_WAKEUP and
 * only one that takes the ring past a multiple of the threshold forces a
 * wakeup, so a busy ring costs one wakeup per batch; the reader also polls
 * on a timer, which bounds the delay of a trickle of packets.
 */
import { Assembler, R0, R1, R2, R3, R4, R6, R7, R8, R9, R10, type AssembledProgram, type Register } from "../asm/assembler.js";
import { emitRecordCurrentProcess } from "./current-process.js";
import { makeInstruction, slotIndexes, type Instruction } from "../asm/instruction.js";
import { argumentError, expectArray, expectBoolean, expectInstance, expectInteger, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import { addToCounter } from "./add-to-counter.js";

/** __sk_buff fields (UAPI context offsets, rewritten by the verifier). */
const skbLength = 0;
const skbPacketType = 4;
const skbVlanPresent = 20;
const skbVlanTci = 24;
const skbVlanProto = 28;
/** Bytes of the two MAC addresses, after which an 802.1Q tag goes. */
const macAddressesSize = 12;
const vlanTagSize = 4;
const skbIfindex = 40;
/** bpf_ringbuf_query / bpf_ringbuf_submit flags. */
const ringbufAvailableData = 0;
const ringbufNoWakeup = 1;
const ringbufForceWakeup = 2;
/** The ring's own header before each record (length and page offset). */
const ringRecordHeaderSize = 8;
/** TC_ACT_UNSPEC / TCX_NEXT: let the packet go on as if we were not there. */
const continueVerdict = -1;

export const captureRingName = "capture_ring";
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
   * Wake the reader only with a record that takes the ring past a multiple
   * of this many bytes (a power of two; BPF_RB_FORCE_WAKEUP for it,
   * BPF_RB_NO_WAKEUP for the others); the reader then polls on a timer too.
   * Default: the kernel's adaptive wakeup (when the reader had caught up).
   */
  wakeupThreshold?: number;
  /**
   * The link has an Ethernet header (not loopback, not raw IP): a VLAN tag the
   * kernel holds in skb metadata (vlan_present, vlan_proto, vlan_tci) is put
   * back into the copy after the MAC addresses, and both lengths grow by 4,
   * as libpcap does with the tag of a packet socket's aux data. Default false.
   */
  vlanTags?: boolean;
}

export interface CaptureProgram extends AssembledProgram {
  /** Instruction index → comment, for annotated listings. */
  annotations: Map<number, string>;
}

export const maximumSnapLength = 262144;
/** tcpdump's default snap length. */
export const defaultSnapLength = 262144;

/**
 * The record sizes (header + packet bytes, 8-byte multiples) the program
 * reserves for a snap length: four per power of two (64, 80, 96, 112, 128,
 * 160, …) and header + snap length as the largest. A record takes at most
 * a quarter more ring space than its bytes need.
 */
export function captureRecordClasses(snapLength: number): number[] {
  const largest = Math.ceil((captureHeaderSize + snapLength) / 8) * 8;
  const classes: number[] = [];
  for (let power = 64; classes.length === 0 || classes[classes.length - 1]! < largest; power *= 2) {
    for (const step of [4, 5, 6, 7]) {
      const size = (power * step) / 4;
      if (size >= largest) {
        classes.push(largest);
        break;
      }
      classes.push(size);
    }
  }
  return classes;
}

/** Bytes a record of `capturedLength` packet bytes takes in the ring (its class plus the ring's 8-byte record header). */
export function captureRecordRingBytes(capturedLength: number, snapLength: number): number {
  const needed = captureHeaderSize + Math.min(capturedLength, snapLength);
  return captureRecordClasses(snapLength).find((size) => size >= needed)! + ringRecordHeaderSize;
}

/**
 * Appends a complete program (as produced by a filter code generator for the
 * skb context) as a filter: its `exit`s become jumps to a check of r0, which
 * goes to `accept` when non-zero. Jump offsets inside it stay valid because
 * an exit and a jump take one slot each.
 */
export function spliceFilterProgram(assembler: Assembler, instructions: readonly Instruction[], labels: { accept: string; reject: string }): void {
  const operation = "splice filter program";
  expectInstance(operation, "assembler", assembler, Assembler);
  expectArray<Partial<Instruction> | null>(operation, "instructions", instructions).forEach((instruction, index) => {
    if (typeof instruction?.opcode !== "number") throw argumentError(operation, `instructions[${index}]`, "an instruction (from decode or an Assembler's finish())", instruction);
  });
  expectFilterLabels(operation, "labels", labels);
  const slots = slotIndexes(instructions);
  const end = slots[instructions.length]!;
  const exitOpcode = 0x95;
  const jumpOpcode = 0x05;
  assembler.raw(...instructions.map((instruction, index) => (instruction.opcode === exitOpcode ? makeInstruction(jumpOpcode, 0, 0, end - slots[index]! - 1, 0) : instruction)));
  assembler.jumpIf(R0, "==", 0, labels.reject).jump(labels.accept);
}

function expectFilterLabels(operation: string, name: string, labels: unknown): void {
  const { accept, reject } = expectObject<{ accept: unknown; reject: unknown }>(operation, name, labels);
  expectString(operation, `${name}.accept`, accept);
  expectString(operation, `${name}.reject`, reject);
}

/** A filter emitter: an object with the expression and emit(). */
export function expectFilterEmitter(operation: string, name: string, value: unknown): void {
  const filter = expectObject<Partial<CaptureFilterEmitter>>(operation, name, value);
  if (typeof filter.expression !== "string" || typeof filter.emit !== "function") {
    throw argumentError(operation, name, "a CaptureFilterEmitter (an object with expression and emit(), e.g. from compileCaptureFilter)", value);
  }
}

/** Checks the options of captureProgram (for callers without TypeScript). */
function checkCaptureProgramOptions(options: CaptureProgramOptions): void {
  const operation = "capture program";
  expectObject(operation, "options", options);
  expectOneOf(operation, "options.direction", options.direction, ["ingress", "egress"]);
  expectInteger(operation, "options.interfaceSlot", options.interfaceSlot, 0, 0xffff);
  expectInteger(operation, "options.snapLength", options.snapLength, 1, maximumSnapLength);
  if (options.filter !== undefined) expectFilterEmitter(operation, "options.filter", options.filter);
  expectBoolean(operation, "options.processes", options.processes, true);
  expectBoolean(operation, "options.vlanTags", options.vlanTags, true);
  if (options.namespace !== undefined) expectInteger(operation, "options.namespace", options.namespace, 0, 0xffff_ffff);
  const threshold = options.wakeupThreshold;
  if (threshold !== undefined && (typeof threshold !== "number" || threshold < 8 || !Number.isInteger(Math.log2(threshold)))) {
    throw argumentError(operation, "options.wakeupThreshold", "a power of two of at least 8 (bytes)", threshold);
  }
}

/** Generates the capture program for one interface and direction. */
export function captureProgram(options: CaptureProgramOptions): CaptureProgram {
  checkCaptureProgramOptions(options);
  const { snapLength, interfaceSlot } = options;
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
  note("count the match");
  const matchedCounted = a.newLabel("matched_");
  count(CaptureCounter.matched, matchedCounted);
  a.label(matchedCounted);
  // Snap lengths up to the MAC addresses would copy the same bytes with or without the tag (libpcap then leaves it out too).
  const vlanTags = options.vlanTags === true && snapLength > macAddressesSize;
  /** destination = length of the packet as saved: skb->len, plus 4 with a tag in skb metadata (scratch is clobbered). */
  const loadSavedLength = (destination: Register, scratch: Register): void => {
    a.load("u32", destination, R6, skbLength);
    if (!vlanTags) return;
    const untagged = a.newLabel("untagged_");
    a.load("u32", scratch, R6, skbVlanPresent)
      .jumpIf(scratch, "==", 0, untagged)
      .add64(destination, vlanTagSize)
      .label(untagged);
  };
  note(vlanTags ? "captured length = min(length (+ 4 for a VLAN tag in skb metadata), snap length)" : "captured length = min(length, snap length)");
  loadSavedLength(R9, R1);
  a.jumpIf(R9, "<=", snapLength, "length_ok")
    .mov64(R9, snapLength)
    .label("length_ok");

  // A reservation needs a size the verifier knows: pick the smallest size class that holds the
  // record (a binary search over constants), reserve it, and copy the packet straight into it.
  const classes = captureRecordClasses(snapLength);
  note(`reserve the smallest of ${classes.length} record sizes that holds header + captured bytes`);
  const classLabel = (index: number) => `class_${index}`;
  const search = (low: number, high: number): void => {
    if (low === high) {
      a.label(classLabel(low)).mov64(R2, classes[low]!).mov64(R8, classes[low]! + ringRecordHeaderSize).jump("reserve");
      return;
    }
    const middle = (low + high) >> 1;
    const right = a.newLabel("classes_above_");
    a.jumpIf(R9, ">", classes[middle]! - captureHeaderSize, right);
    search(low, middle);
    a.label(right);
    search(middle + 1, high);
  };
  search(0, classes.length - 1);
  a.label("reserve")
    .loadMapFd(R1, captureRingName)
    .mov64(R3, 0)
    .call("ringbuf_reserve")
    .jumpIf(R0, "==", 0, "dropped")
    .mov64(R7, R0);

  note("header: original length, captured length, time, interface, direction, slot, packet type");
  loadSavedLength(R1, R2);
  a.store("u32", R7, 12, R1)
    .store("u32", R7, 16, R9)
    .call("ktime_get_ns")
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
  if (vlanTags) {
    // The record has room for at least 16 packet bytes (the smallest size class), the captured length says how many count.
    note("a VLAN tag in skb metadata: MAC addresses, the tag (protocol, TCI; network order), then the rest from offset 12");
    a.load("u32", R1, R6, skbVlanPresent)
      .jumpIf(R1, "==", 0, "copy_untagged")
      .mov64(R1, R6)
      .mov64(R2, 0)
      .mov64(R3, R7).add64(R3, captureHeaderSize)
      .mov64(R4, macAddressesSize)
      .call("skb_load_bytes")
      .jumpIf(R0, "s<", 0, "copy_failed")
      // vlan_proto is the __be16 as stored: its bytes are already in network order.
      .load("u32", R1, R6, skbVlanProto)
      .store("u16", R7, captureHeaderSize + macAddressesSize, R1)
      .load("u32", R1, R6, skbVlanTci)
      .toBigEndian(R1, 16)
      .store("u16", R7, captureHeaderSize + macAddressesSize + 2, R1)
      .mov64(R4, R9)
      .sub64(R4, macAddressesSize + vlanTagSize)
      .jumpIf(R4, "s<=", 0, "submit")
      .mov64(R1, R6)
      .mov64(R2, macAddressesSize)
      .mov64(R3, R7).add64(R3, captureHeaderSize + macAddressesSize + vlanTagSize)
      .call("skb_load_bytes")
      .jumpIf(R0, "s>=", 0, "submit")
      .jump("copy_failed");
    a.label("copy_untagged");
  }
  note("copy the captured bytes from the packet into the record, after the header");
  a.jumpIf(R9, "==", 0, "submit")
    .mov64(R1, R6)
    .mov64(R2, 0)
    .mov64(R3, R7).add64(R3, captureHeaderSize)
    .mov64(R4, R9)
    .call("skb_load_bytes")
    .jumpIf(R0, "s>=", 0, "submit")
    .label("copy_failed")
    // Not expected (the length is the packet's): keep the header, with no bytes.
    .store("u32", R7, 16, 0);

  a.label("submit");
  const threshold = options.wakeupThreshold;
  if (threshold !== undefined) {
    // One wakeup per batch, not per record: only a record that takes the ring past a multiple of the
    // threshold wakes the reader; records after it find it awake (or draining). Every multiple, so a
    // crossing missed by a race between CPUs is made up for at the next one.
    note(`wake the reader only with a record that takes the ring past a multiple of ${threshold} bytes`);
    a.loadMapFd(R1, captureRingName)
      .mov64(R2, ringbufAvailableData)
      .call("ringbuf_query")
      .mov64(R1, R0)
      .sub64(R1, R8)
      .rightShift64(R0, Math.log2(threshold))
      .rightShift64(R1, Math.log2(threshold))
      .mov64(R2, ringbufNoWakeup)
      .jumpIf(R0, "==", R1, "send")
      .mov64(R2, ringbufForceWakeup)
      .label("send");
  } else {
    note("adaptive wakeup: the kernel wakes the reader when it had read everything");
    a.mov64(R2, 0);
  }
  a.mov64(R1, R7)
    .call("ringbuf_submit")
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
  if (!Buffer.isBuffer(record)) throw argumentError("decode capture record", "record", "a Buffer (a record from the capture ring)", record);
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
