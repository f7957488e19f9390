/**
 * A pcap-filter expression as the capture uses it: compiled once per link
 * type into (a) code spliced into the live capture program, (b) a standalone
 * skb program for offline runs in the kernel (BPF_PROG_TEST_RUN), (c) the
 * same program for the user-space interpreter, and (d) the reference
 * evaluator. The filter compiler lives in src/filter; this is the plug.
 */
import type { Instruction } from "../asm/instruction.js";
import { compileFilter, type CompiledFilter } from "../filter/compile-filter.js";
import type { FilterPacket } from "../filter/evaluate-predicate.js";
import { generateFilterProgram, type GeneratedFilter } from "../filter/generate-filter-program.js";
import { spliceFilterProgram, type CaptureFilterEmitter } from "../programs/capture-program.js";

export interface CaptureFilter {
  readonly expression: string;
  readonly linkType: number;
  /** For the live capture program. */
  readonly emitter: CaptureFilterEmitter;
  /** A complete SchedCls program: r0 ≠ 0 when the packet matches. */
  readonly kernelProgram: GeneratedFilter;
  /**
   * For saved packets in a BPF_PROG_TEST_RUN (context from offlineTestRunContext): `len` is the
   * record's original length (__sk_buff.wire_len), and r0 is offlineUndecided if the kernel's
   * loop budget ever ended a protochain walk early (decide such packets in the interpreter).
   */
  readonly offlineProgram: GeneratedFilter;
  /** The same for the asm Interpreter: r1 = packet, r2 = captured length, r3 = wire length, r4 = packet type. */
  readonly interpreterProgram: GeneratedFilter;
  /** The reference evaluator (no eBPF). */
  matches(packet: FilterPacket): boolean;
}

export interface CaptureFilterOptions {
  /** True live (the skb's packet type tells inbound/outbound); false for saved captures, as libpcap. */
  packetMetadata?: boolean;
  /** The program type the kernel filter runs in: "tc" (default) or "cgroup" (cgroup_skb, which cannot pull non-linear data). */
  hook?: "tc" | "cgroup";
}

/** Compiles an expression for a link type; throws FilterSyntaxError (a UsageError) with a caret for bad input. */
export function compileCaptureFilter(expression: string, linkType: number, options: CaptureFilterOptions = {}): CaptureFilter {
  const compiled: CompiledFilter = compileFilter(expression, { linkType, packetMetadata: options.packetMetadata ?? false });
  // Each program is generated when first asked for: `capture -r` needs only the interpreter's, a live capture only the kernel's.
  let kernelProgram: GeneratedFilter | undefined;
  let offlineProgram: GeneratedFilter | undefined;
  let interpreterProgram: GeneratedFilter | undefined;
  let emitter: CaptureFilterEmitter | undefined;
  // tc (SchedCls) programs may read the packet directly; the generator falls back to bpf_skb_load_bytes for non-linear packets.
  const kernel = () => (kernelProgram ??= generateFilterProgram(compiled, { context: "skb", hook: options.hook ?? "tc", acceptValue: 1, rejectValue: 0 }));
  return {
    expression,
    linkType,
    get emitter(): CaptureFilterEmitter {
      return (emitter ??= {
        expression,
        annotations: kernel().annotations,
        labels: kernel().labels,
        emit(assembler, labels) {
          spliceFilterProgram(assembler, kernel().instructions as Instruction[], labels);
        },
      });
    },
    get kernelProgram() {
      return kernel();
    },
    get offlineProgram() {
      return (offlineProgram ??= generateFilterProgram(compiled, { context: "skb", hook: "tc", acceptValue: 1, rejectValue: 0, packetLength: "wire", undecidedValue: offlineUndecided }));
    },
    get interpreterProgram() {
      return (interpreterProgram ??= generateFilterProgram(compiled, { context: "skb", acceptValue: 1, rejectValue: 0, prologue: "interpreter" }));
    },
    matches: (packet) => compiled.matches(packet),
  };
}

/** offlineProgram's return value for "undecided in the kernel": run the interpreter. */
export const offlineUndecided = 2;

/** sizeof(struct __sk_buff) and the offset of wire_len (uapi, stable). */
const skbContextSize = 192;
const skbWireLengthOffset = 160;
/** The kernel refuses a test-run wire_len above GSO_LEGACY_MAX_SIZE. */
const maximumTestRunWireLength = 65536;

/**
 * The BPF_PROG_TEST_RUN context that gives offlineProgram a saved record's original
 * length as `len` (tcpdump -r compares the length on the wire, not the captured
 * bytes); undefined when the kernel cannot take it (filter in the interpreter instead).
 */
export function offlineTestRunContext(capturedLength: number, originalLength: number): Buffer | undefined {
  const wireLength = Math.max(originalLength, capturedLength);
  if (wireLength > maximumTestRunWireLength) return undefined;
  const context = Buffer.alloc(skbContextSize);
  context.writeUInt32LE(wireLength, skbWireLengthOffset);
  return context;
}
