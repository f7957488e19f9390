import { endianness } from "node:os";
import { Assembler, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10, type AssembledProgram, type Condition, type Register } from "../asm/assembler.js";
import { UsageError } from "../sys/errors.js";
import type { CompiledFilter } from "./compile-filter.js";
import { topologicalNodes, type DecisionNode, type DecisionTarget, type DecisionTest } from "./decision-graph.js";
import { protochainMaximumBytes } from "./evaluate-predicate.js";
import { formatValue, type Value } from "./predicate.js";
import { expectObject, expectString } from "../sys/argument-checks.js";

/**
 * Where the filter runs.
 * - "skb": socket filters and tc (sched_cls): packet bytes through LD_ABS/LD_IND
 *   (default), bpf_skb_load_bytes ("helper") or, for tc only, direct packet access
 *   ("direct"); `len` is skb->len, inbound/outbound use skb->pkt_type.
 * - "xdp": direct packet access between data and data_end with the bounds checks the
 *   verifier needs; `len` is data_end - data; every packet is inbound.
 */
export type FilterContext = "skb" | "xdp";

export interface GenerateFilterOptions {
  context: FilterContext;
  /** r0 when the packet matches (default: 0x40000 for skb like tcpdump's snap length, XDP_PASS for xdp). */
  acceptValue?: number;
  /** r0 when it does not (default: 0 for skb, XDP_DROP for xdp). Must be 0 for skb with LD_ABS loads. */
  rejectValue?: number;
  /**
   * "kernel" (default): read data/data_end/len/pkt_type from the program's context.
   * "interpreter": for the asm interpreter in tests: r1 = packet, r2 = captured length,
   * r3 = wire length, r4 = packet type. The packet is linear: tc direct access code has no
   * non-linear path then (run the kernel prologue with the interpreter's socketBufferContext
   * and a linear length to exercise it).
   */
  prologue?: "kernel" | "interpreter";
  /**
   * Which program type an skb filter is for: "socket" (socket filters, the default
   * unless skbLoads says otherwise), "tc" (sched_cls/sched_act), where the default
   * skbLoads is "direct", or "cgroup" (cgroup_skb): direct too, but that program type
   * cannot call bpf_skb_pull_data, so non-linear packets take the helper-based copy.
   */
  hook?: "socket" | "tc" | "cgroup";
  /**
   * skb packet loads:
   * - "legacy" (default for socket filters): LD_ABS/LD_IND, which end the program with 0
   *   on an out-of-bounds load (so the reject value must be 0 and the code cannot be a subprogram);
   * - "helper": bpf_skb_load_bytes, any reject value, usable as a subprogram;
   * - "direct" (default for hook "tc"; tc only, socket filters cannot read skb->data):
   *   direct packet access through __sk_buff data/data_end like XDP. Direct access sees
   *   only the linear part of the skb: when a bounds check fails although skb->len says
   *   the bytes exist (a non-linear skb), bpf_skb_pull_data makes the bytes the filter can
   *   read (at most) linear and the filter starts again from the top; a filter whose reads
   *   have no static bound starts again in a "helper" mode copy instead. No packet is missed.
   */
  skbLoads?: "legacy" | "helper" | "direct";
  /** Prefix for every label, so the code can be appended to another program. */
  labelPrefix?: string;
  /**
   * What `len` reads in an skb context: "skb" (default) skb->len, the packet as the
   * hook sees it; "wire" __sk_buff.wire_len, which a BPF_PROG_TEST_RUN context sets to
   * a saved record's original length (tc programs only).
   */
  packetLength?: "skb" | "wire";
  /**
   * r0 when the kernel's loop budget (may_goto) ends a protochain walk still undecided,
   * so the caller can decide the packet elsewhere. The budget is millions of iterations
   * and the walk stops long before it (protochainMaximumBytes), so this is a safety net.
   * Default: as if the protocol was not found.
   */
  undecidedValue?: number;
}

export interface GeneratedFilter extends AssembledProgram {
  /** Instruction index where each decision node's code starts, with the node's test as text. */
  annotations: Map<number, string>;
}

const xdpDrop = 1;
const xdpPass = 2;
/** __sk_buff field offsets (uapi, stable). */
const skbLength = 0;
const skbPacketType = 4;
const skbVlanPresent = 20;
const skbVlanTci = 24;
const skbData = 76;
const skbDataEnd = 80;
const skbWireLength = 160;
/** xdp_md field offsets (uapi, stable). */
const xdpData = 0;
const xdpDataEnd = 4;
/** Stack: spill slots for nested arithmetic grow down from r10-8; a load buffer, filter registers and cached values below. */
const spillSlots = 16;
const loadBufferSlot = -8 * spillSlots - 8;
const registerSlotBase = loadBufferSlot - 8;
/** Interpreter prologue only: wire length and packet type, at the bottom of the stack. */
const lengthSlot = -504;
const packetTypeSlot = -496;
/** Filter registers and kept values stay above the slots reserved at the bottom of the stack. */
const lowestFreeSlot = packetTypeSlot + 8;
/** The largest packet offset direct access can check (the verifier's limit). */
const maximumPacketOffset = 0xffff;
/** Packet data in memory is big-endian; on a little-endian machine constants are swapped instead of loaded values. */
const littleEndian = endianness() === "LE";

type LoadMode = "legacy" | "helper" | "direct";
type Location = Register | number;

/**
 * Generates a complete eBPF program from a compiled filter's decision graph:
 * one block per test, tests in libpcap's order, identical tests with identical
 * successors emitted once, shared accept/reject exits. Registers in direct
 * mode (XDP, tc): r2 data, r3 data_end, r1 context (and r6 in tc with the pull);
 * legacy/helper: r6 context, r7 LD_IND index. Spare registers keep values several tests share.
 */
export function generateFilterProgram(filter: CompiledFilter, options: GenerateFilterOptions): GeneratedFilter {
  expectCompiledFilter("generate filter program", filter);
  expectObject("generate filter program", "the options", options);
  checkOptions(options);
  let generator = new FilterCodeGenerator(options, linearHeaderBytes(filter.linkType), true);
  let assembler = generator.build(filter.graph);
  if (generator.movedData || generator.biasConflict) {
    // Moving the data register saves the first check's copy but can cost one at later checks: keep the shorter.
    const other = new FilterCodeGenerator(options, linearHeaderBytes(filter.linkType), false);
    const otherAssembler = other.build(filter.graph);
    if (otherAssembler.length < assembler.length || generator.biasConflict) {
      generator = other;
      assembler = otherAssembler;
    }
  }
  const annotations = generator.annotations;
  if (generator.needsFallback) {
    // Non-linear skbs: the same filter with bpf_skb_load_bytes, entered from the direct code's failed bounds checks.
    const fallback = new FilterCodeGenerator({ ...options, skbLoads: "helper", labelPrefix: `${options.labelPrefix ?? ""}slow_` });
    const base = assembler.length;
    assembler.append(fallback.build(filter.graph, generator.fallbackEntry));
    for (const [index, text] of fallback.annotations) annotations.set(base + index, `(non-linear) ${text}`);
  }
  return { ...assembler.finish(), annotations };
}

/**
 * The filter as a bpf-to-bpf subprogram to append to another program:
 * `main.mov64(R1, ctx).callLocal(entry)…; main.append(assembler)`. It takes the
 * context in r1 and returns the accept or reject value in r0. skb code uses
 * bpf_skb_load_bytes (LD_ABS is not allowed with subprograms).
 */
export function generateFilterSubprogram(
  filter: CompiledFilter,
  options: Omit<GenerateFilterOptions, "skbLoads" | "prologue" | "hook"> & { labelPrefix: string },
): { assembler: Assembler; entry: string } {
  expectCompiledFilter("generate filter subprogram", filter);
  expectObject("generate filter subprogram", "the options", options);
  expectString("generate filter subprogram", "options.labelPrefix", options.labelPrefix);
  const full: GenerateFilterOptions = { ...options, skbLoads: "helper", prologue: "kernel" };
  checkOptions(full);
  const generator = new FilterCodeGenerator(full);
  const entry = `${options.labelPrefix}filter`;
  const assembler = generator.build(filter.graph, entry);
  return { assembler, entry };
}

/**
 * Bytes at the start of every skb's linear part at tc for a link type: the Ethernet header (the kernel
 * builds it in the skb's head on transmit, and eth_type_trans reads it there on receive). A bounds check
 * within them that fails means the packet is that short, linear or not.
 */
function linearHeaderBytes(linkType: number): number {
  return linkType === 1 ? 14 : 0;
}

/** The `filter` argument of the generators: what compileFilter() returned. */
function expectCompiledFilter(operation: string, filter: unknown): void {
  const checked = expectObject<CompiledFilter>(operation, "the filter", filter);
  if (typeof checked.graph !== "object" || checked.graph === null) throw new UsageError(operation, "the filter must come from compileFilter()", "compile the expression with compileFilter(expression, { linkType }) first");
}

function loadMode(options: GenerateFilterOptions): LoadMode {
  if (options.context === "xdp") return "direct";
  return options.skbLoads ?? (options.hook === "tc" || options.hook === "cgroup" ? "direct" : "legacy");
}

function checkOptions(options: GenerateFilterOptions): void {
  if (options.context === "skb" && loadMode(options) === "legacy" && (options.rejectValue ?? 0) !== 0) {
    throw new UsageError("generate filter", "with LD_ABS loads the skb context rejects with 0 (an out-of-bounds load ends the program with 0)", "use rejectValue 0, skbLoads \"helper\" or \"direct\" (tc), or the xdp context");
  }
  if (options.context === "skb" && options.hook === "socket" && options.skbLoads === "direct") {
    throw new UsageError("generate filter", "socket filters cannot read packet data directly (skbLoads \"direct\" is for tc)", "use skbLoads \"legacy\" or \"helper\", or hook \"tc\"");
  }
}

/** The largest value an offset expression can take, when the verifier can follow it too (undefined: unknown). */
function upperBound(value: Value): number | undefined {
  switch (value.kind) {
    case "constant":
      return value.value;
    case "load":
      return 2 ** (8 * value.size) - 1;
    case "binary": {
      if (value.right.kind !== "constant") return undefined;
      const k = value.right.value;
      const left = upperBound(value.left);
      if (value.operator === "&") return left === undefined ? k : Math.min(left, k);
      if (left === undefined) return undefined;
      let bound: number;
      switch (value.operator) {
        case "+": bound = left + k; break;
        case "*": bound = left * k; break;
        case "<<": bound = k >= 32 ? 0 : left * 2 ** k; break;
        case ">>": bound = k >= 32 ? 0 : Math.floor(left / 2 ** k); break;
        default: return undefined;
      }
      return bound <= 0xffffffff ? bound : undefined;
    }
    default:
      return undefined;
  }
}

function swap(value: number, size: 2 | 4): number {
  return size === 2 ? ((value & 0xff) << 8) | ((value >>> 8) & 0xff) : (((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >>> 8) & 0xff00) | (value >>> 24)) >>> 0;
}

const narrowTypes = { 1: "u8", 2: "u16" } as const;

const negated: Partial<Record<Condition, Condition>> = { "==": "!=", "!=": "==", ">": "<=", "<=": ">", ">=": "<", "<": ">=" };

/** A packet load split into a variable base and a constant displacement: data + base is kept as a pointer. */
interface PointerLoad {
  base: Value;
  displacement: number;
  key: string;
  bound: number;
}

/** Loads at `base + constant` whose base is small enough never to wrap or pass the verifier's offset limit. */
function pointerLoad(load: Extract<Value, { kind: "load" }>): PointerLoad | undefined {
  const offset = load.offset;
  if (offset.kind === "constant") return undefined;
  let base: Value = offset;
  let displacement = 0;
  if (offset.kind === "binary" && offset.operator === "+" && offset.right.kind === "constant") {
    base = offset.left;
    displacement = offset.right.value;
  }
  const bound = upperBound(base);
  if (bound === undefined || bound + displacement + load.size > maximumPacketOffset) return undefined;
  return { base, displacement, key: `ptr:${formatValue(base)}`, bound };
}

/** A comparison done on the loaded bytes as they are in memory, against a swapped constant: no byte swap at run time. */
interface RawCompare {
  load: Extract<Value, { kind: "load" }>;
  mask: number | undefined;
  constant: number;
}

class FilterCodeGenerator {
  private readonly asm = new Assembler();
  private readonly labels = new Map<DecisionNode, string>();
  readonly annotations = new Map<number, string>();
  private readonly prefix: string;
  private readonly mode: LoadMode;
  private readonly interpreter: boolean;
  private cacheSlotBase = 0;
  private readonly acceptLabel: string;
  private readonly rejectLabel: string;
  private readonly undecidedLabel: string;
  /** Where failed bounds checks go: the reject exit, or (tc direct) a check for a non-linear skb. */
  private readonly failLabel: string;
  /** tc direct access: the label of the non-linear fallback check, and of the fallback program it enters. */
  readonly fallbackLabel: string | undefined;
  readonly fallbackEntry: string | undefined;
  private readonly usedExits = new Set<string>();
  /** Scratch register for bounds checks and second operands (r1, or r2 in tc direct access, where r1 keeps the context). */
  private readonly scratch: Register;
  /** tc direct access: the context stays in r1 (for skb->len, pkt_type and the non-linear path; r6 too with the pull); the scratch register is r5. */
  private readonly contextInRegister: boolean;
  /** Direct access: packet start and end, in caller-saved registers (no calls here), so the JIT saves no registers. */
  private readonly data = R2;
  private readonly dataEnd = R3;
  /** The exit placed right after the last node, which it can fall through to. */
  private fallThroughExit: "accept" | "reject" | undefined;
  private spillDepth = 0;
  private maximumRegister = -1;
  private usesPacketType = false;
  private usesLength = false;
  private usesProtochain = false;
  private usesPacket = false;
  private usesVlanMetadata = false;
  /**
   * tc direct access when every load has a static bound: the bytes the filter can read at most. A failed
   * bounds check on a non-linear skb pulls that many bytes (or skb->len) into the linear part with
   * bpf_skb_pull_data and runs the filter again (see emitPullAndRestart). Undefined: the helper-based
   * second copy is appended instead.
   */
  private pullBytes: number | undefined;
  /** tc direct access with pullBytes: where the filter starts again (after the prologue's copy of the context into r6). */
  private readonly restartLabel: string;
  /** Direct access: bytes from data (key "") or from a kept pointer (its key) proven to lie before data_end on every path here. */
  private proven = new Map<string, number>();
  /** Direct access: bytes every path from the current node to accept reads, per base (see computeWidths). */
  private widths = new Map<string, number>();
  private readonly nodeWidths = new Map<DecisionNode, Map<string, number>>();
  /** Values computed on every path here, and where each is kept. */
  private available = new Map<string, Location>();
  /**
   * Direct access, on this path: bytes added to the data register by bounds checks that move it (`data +=
   * n; if data > data_end`, saving the copy into the scratch register); loads from data subtract it. A check
   * moves it only in the root or in a node below which no paths join, so it is the same on every path
   * into a node. Pointers computed from data carry the bias of that moment (pointerBiases), and a bounds
   * check may move a pointer held only in a register the same way; where paths with different biases of a
   * pointer join, the pointer is computed again.
   */
  private dataBias = 0;
  private pointerBiases = new Map<string, number>();
  private moved = false;
  /** Set when paths with different biases met (then the code is not used). */
  biasConflict = false;
  /** True when some bounds check moved the data register. */
  get movedData(): boolean {
    return this.moved;
  }
  /** True while a bounds check on data may move the data register (see dataBias). */
  private biasAllowed = false;
  /** Direct access: the scratch register holds base `key` + `end` on every path here (from a bounds check). */
  private scratchHolds: { key: string; end: number } | undefined;
  /** Values worth keeping (used by two or more tests) → register or stack slot. */
  private readonly cacheLocations = new Map<string, Location>();

  /**
   * `linearHeaderBytes`: see linearHeaderBytes(). `moveData`: whether the first bounds check may move the
   * data register (see dataBias), and a bounds check on a kept pointer the pointer's register (pointerBiases).
   */
  constructor(private readonly options: GenerateFilterOptions, private readonly linearHeaderBytes = 0, private readonly moveData = false) {
    this.prefix = options.labelPrefix ?? "";
    this.mode = loadMode(options);
    this.interpreter = options.prologue === "interpreter";
    this.contextInRegister = options.context === "skb" && this.mode === "direct";
    this.scratch = this.contextInRegister ? R5 : R1;
    this.acceptLabel = this.asm.newLabel(`${this.prefix}accept`);
    this.rejectLabel = this.asm.newLabel(`${this.prefix}reject`);
    this.undecidedLabel = this.asm.newLabel(`${this.prefix}undecided`);
    this.restartLabel = this.asm.newLabel(`${this.prefix}restart`);
    // The interpreter prologue gives a linear packet: a failed check rejects, as in XDP. (The interpreter runs
    // the kernel prologue's non-linear path with socketBufferContext and a linear length, see test/filter.)
    if (options.context === "skb" && this.mode === "direct" && !this.interpreter) {
      this.fallbackLabel = this.asm.newLabel(`${this.prefix}nonlinear`);
      this.fallbackEntry = `${this.prefix}slow_filter`;
      this.failLabel = this.fallbackLabel;
    } else {
      this.failLabel = this.rejectLabel;
    }
  }

  /** True when some bounds check leads to the non-linear fallback check. */
  private get fallbackUsed(): boolean {
    return this.fallbackLabel !== undefined && this.usedExits.has(this.fallbackLabel);
  }

  /** True when the helper-based second copy of the filter must be appended (a load without a static bound). */
  get needsFallback(): boolean {
    return this.fallbackUsed && this.pullBytes === undefined;
  }

  private newLabel(name: string): string {
    return this.asm.newLabel(`${this.prefix}${name}`);
  }

  /** Registers free for shared values: no helper calls clobber r1-r5 in direct mode; LD_ABS and helpers do (and LD_ABS needs r6). */
  private cacheRegisters(): Register[] {
    // Caller-saved first: each callee-saved register a program uses costs a push and a pop in the JIT's prologue and epilogue.
    // r6 is left alone: programs that splice the filter in (the capture program) keep their context there.
    if (this.mode === "direct") return this.contextInRegister ? [R4, R9, R8, R7] : [R4, R5, R9, R8, R7];
    if (this.mode === "helper") return [R7, R8, R9];
    return [R8, R9];
  }

  build(graph: DecisionTarget, entryLabel?: string): Assembler {
    if (entryLabel !== undefined) this.asm.label(entryLabel);
    const root = mergeIdenticalNodes(graph);
    const nodes = topologicalNodes(root);
    const uses = new Map<string, number>();
    /** First and last node (in emission order) that computes or reads each value. */
    const ranges = new Map<string, [number, number]>();
    nodes.forEach((node, index) => {
      this.scan(node.test);
      this.labels.set(node, this.newLabel(`test${node.id}_`));
      for (const key of this.cacheableKeys(node.test)) {
        uses.set(key, (uses.get(key) ?? 0) + 1);
        const range = ranges.get(key);
        if (range) range[1] = index;
        else ranges.set(key, [index, index]);
      }
    });
    if (this.mode === "direct") this.computeWidths(nodes);
    this.cacheSlotBase = this.registerSlot(this.maximumRegister + 1 + (this.usesProtochain ? protochainSlots : 0));
    const shared = [...uses].filter(([, count]) => count >= 2);
    // Keep only the largest shared values: a part always used inside a larger shared value is not kept on its own.
    const worth = shared.filter(([key, count]) => !shared.some(([other, otherCount]) => other !== key && other.includes(key) && otherCount >= count));
    // Values whose ranges do not overlap share a register: every path from a node that computes a value
    // to a node that reads it only passes nodes between the two in emission (topological) order.
    const busyUntil = new Map<Register, number>(this.cacheRegisters().map((register) => [register, -1]));
    let slots = 0;
    for (const [key] of worth.sort(([a], [b]) => ranges.get(a)![0] - ranges.get(b)![0])) {
      const [first, last] = ranges.get(key)!;
      const free = [...busyUntil].find(([, until]) => until < first);
      if (free) {
        this.cacheLocations.set(key, free[0]);
        busyUntil.set(free[0], last);
      } else if (slots < maximumCachedValues) {
        this.cacheLocations.set(key, this.cacheSlotBase - 8 * slots++);
      }
    }
    const readable = this.readableBytes(nodes);
    // Within the link-layer header every failed check rejects: nothing to pull.
    if (this.fallbackLabel !== undefined && this.options.hook !== "cgroup" && readable !== undefined && readable > this.linearHeaderBytes) this.pullBytes = readable;
    // The data register may move when every load has a static bound (no variable offset near the verifier's
    // limit) and nothing computes data_end - data (XDP's len).
    const biasPossible = this.moveData && this.mode === "direct" && readable !== undefined && !(this.options.context === "xdp" && this.usesLength);
    const last = nodes[nodes.length - 1];
    if (last) this.fallThroughExit = last.whenTrue.kind !== "node" ? last.whenTrue.kind : last.whenFalse.kind !== "node" ? last.whenFalse.kind : undefined;
    this.prologue();
    if (root.kind !== "node") this.asm.jump(this.targetLabel(root));
    // What every path into a node has established: proven packet length and kept values.
    const entry = new Map<DecisionNode, { proven: Map<string, number>; available: Map<string, Location>; scratch: { key: string; end: number } | undefined; dataBias: number; pointerBiases: Map<string, number> }>();
    if (root.kind === "node") entry.set(root, { proven: new Map(), available: new Map(), scratch: undefined, dataBias: 0, pointerBiases: new Map() });
    // Nodes below which no paths join: a check there may move the data register (see dataBias).
    const predecessors = new Map<DecisionNode, number>();
    for (const node of nodes) for (const successor of [node.whenTrue, node.whenFalse]) if (successor.kind === "node") predecessors.set(successor, (predecessors.get(successor) ?? 0) + 1);
    const joinFree = new Set<DecisionNode>();
    for (const node of [...nodes].reverse()) {
      if ([node.whenTrue, node.whenFalse].every((successor) => successor.kind !== "node" || (predecessors.get(successor) === 1 && joinFree.has(successor)))) joinFree.add(node);
    }
    nodes.forEach((node, index) => {
      this.asm.label(this.labels.get(node)!);
      this.annotations.set(this.asm.length, describeTest(node.test));
      const state = entry.get(node) ?? { proven: new Map(), available: new Map(), scratch: undefined, dataBias: 0, pointerBiases: new Map<string, number>() };
      this.proven = new Map(state.proven);
      this.available = new Map(state.available);
      this.scratchHolds = state.scratch;
      this.dataBias = state.dataBias;
      this.pointerBiases = new Map(state.pointerBiases);
      this.widths = this.nodeWidths.get(node) ?? new Map();
      const next = nodes[index + 1];
      this.biasAllowed = biasPossible && (index === 0 || joinFree.has(node));
      this.emitNode(node, next);
      this.biasAllowed = false;
      for (const successor of [node.whenTrue, node.whenFalse]) {
        if (successor.kind !== "node") continue;
        const existing = entry.get(successor);
        if (!existing) {
          entry.set(successor, { proven: new Map(this.proven), available: new Map(this.available), scratch: this.scratchHolds, dataBias: this.dataBias, pointerBiases: new Map(this.pointerBiases) });
        } else {
          if (existing.dataBias !== this.dataBias) this.biasConflict = true;
          for (const [key, bias] of existing.pointerBiases) {
            if (this.pointerBiases.get(key) === bias) continue;
            existing.pointerBiases.delete(key);
            existing.available.delete(key);
          }
          if (existing.scratch?.key !== this.scratchHolds?.key || existing.scratch?.end !== this.scratchHolds?.end) existing.scratch = undefined;
          for (const [key, end] of existing.proven) {
            const here = this.proven.get(key);
            if (here === undefined) existing.proven.delete(key);
            else existing.proven.set(key, Math.min(end, here));
          }
          for (const [key, location] of existing.available) if (this.available.get(key) !== location) existing.available.delete(key);
        }
      }
    });
    const context = this.options.context;
    const exits = [
      { kind: "accept", label: this.acceptLabel, value: this.options.acceptValue ?? (context === "xdp" ? xdpPass : 0x40000) },
      { kind: "reject", label: this.rejectLabel, value: this.options.rejectValue ?? (context === "xdp" ? xdpDrop : 0) },
    ];
    if (this.fallThroughExit === "reject") exits.reverse();
    if (this.options.undecidedValue !== undefined) exits.push({ kind: "undecided", label: this.undecidedLabel, value: this.options.undecidedValue });
    if (this.fallThroughExit !== undefined) this.usedExits.add(exits[0]!.label);
    if (this.fallbackUsed) this.usedExits.add(this.rejectLabel);
    // Only exits something reaches: the verifier refuses unreachable instructions.
    for (const { label, value } of exits) if (this.usedExits.has(label)) this.asm.label(label).return(value);
    if (this.fallbackUsed) {
      if (this.pullBytes !== undefined) this.emitPullAndRestart(this.pullBytes);
      else this.emitFallbackCheck();
    }
    const lowest = slots > 0 ? this.cacheSlotBase - 8 * (slots - 1) : this.cacheSlotBase + 8;
    if (lowest < lowestFreeSlot) throw new UsageError("generate filter", "the filter needs more stack than eBPF allows", "a simpler filter");
    return this.asm;
  }

  /**
   * A bounds check failed in tc direct access: when skb->len says the packet is longer
   * than its linear part, run the whole filter again with bpf_skb_load_bytes; otherwise reject.
   */
  private emitFallbackCheck(): void {
    const a = this.asm;
    a.label(this.fallbackLabel!);
    a.load("u32", R0, R1, skbLength);
    a.mov64(R4, this.dataEnd).sub64(R4, this.data).jumpIf(R0, "<=", R4, this.exit(this.rejectLabel));
    a.jump(this.fallbackEntry!);
  }

  /**
   * The most bytes from the packet start the filter can read, when every load has a static bound (a
   * constant offset, or a kept pointer whose base has an upper bound); undefined otherwise.
   */
  private readableBytes(nodes: DecisionNode[]): number | undefined {
    if (this.usesProtochain) return undefined;
    let bytes = 0;
    for (const node of nodes) {
      for (const load of testLoads(node.test)) {
        if (load.offset.kind === "constant") {
          // A load beyond the verifier's offset limit is emitted as an unconditional reject: it reads nothing.
          if (load.offset.value <= maximumPacketOffset - load.size) bytes = Math.max(bytes, load.offset.value + load.size);
          continue;
        }
        const pointer = pointerLoad(load);
        if (!pointer) return undefined;
        bytes = Math.max(bytes, pointer.bound + pointer.displacement + load.size);
      }
    }
    return bytes > 0 ? bytes : undefined;
  }

  /**
   * A bounds check failed in tc direct access, and every load has a static bound. The prologue copied
   * the context into r6, and the code reads it from there; r1 keeps the context too, and nothing else
   * writes r1. First pass (r1 is the context): bpf_skb_pull_data(skb, min(skb->len, bytes)) makes every
   * byte the filter can read linear, and the filter runs again from the top with r1 = 0. Second pass:
   * a failed check means the packet is too short: reject. The verifier knows r1 in both passes (a
   * context pointer is never 0), so it sees the second pass end. On a linear packet that is really too
   * short the pull changes nothing and the second pass rejects.
   *
   * The pull copies at most `bytes` bytes into the linear part (and un-clones the skb's head when it is
   * shared, as any tc program that writes does); the filter itself stays side-effect free. If the pull
   * fails (the kernel cannot allocate the memory), the second pass sees the same linear part and rejects.
   */
  private emitPullAndRestart(bytes: number): void {
    const a = this.asm;
    const clamped = this.newLabel("pull");
    a.label(this.fallbackLabel!)
      .jumpIf(R1, "==", 0, this.exit(this.rejectLabel))
      .load("u32", R2, R1, skbLength)
      .jumpIf(R2, "<=", bytes, clamped)
      .mov64(R2, bytes)
      .label(clamped)
      .call("skb_pull_data")
      .mov64(R1, 0)
      .jump(this.restartLabel);
  }

  /**
   * For each node and base ("" = data, else a kept pointer): the bytes every path from
   * the node to accept reads. A packet shorter than that cannot be accepted whatever
   * the tests say (some load on the way would fail), so one bounds check for the
   * widest of them covers the loads of the node and of the nodes after it.
   */
  private computeWidths(nodes: DecisionNode[]): void {
    const bases = new Set<string>([""]);
    const own = new Map<DecisionNode, Map<string, number>>();
    for (const node of nodes) {
      const ends = new Map<string, number>();
      for (const load of testLoads(node.test)) {
        let key: string;
        let end: number;
        if (load.offset.kind === "constant") {
          key = "";
          end = load.offset.value + load.size;
        } else {
          const pointer = pointerLoad(load);
          if (!pointer) continue;
          key = pointer.key;
          end = pointer.displacement + load.size;
        }
        bases.add(key);
        ends.set(key, Math.max(ends.get(key) ?? 0, end));
      }
      own.set(node, ends);
    }
    const widthOf = (target: DecisionTarget, key: string): number => {
      if (target.kind === "accept") return 0;
      if (target.kind === "reject") return Infinity;
      return this.nodeWidths.get(target)!.get(key)!;
    };
    for (const node of [...nodes].reverse()) {
      const widths = new Map<string, number>();
      for (const key of bases) {
        const after = Math.min(widthOf(node.whenTrue, key), widthOf(node.whenFalse, key));
        widths.set(key, Math.max(own.get(node)!.get(key) ?? 0, after));
      }
      this.nodeWidths.set(node, widths);
    }
  }

  /** The bytes to check for a load ending at `end` from a base whose largest value is `bound`. */
  private checkedEnd(key: string, end: number, bound: number): number {
    const width = this.widths.get(key);
    if (width === undefined || !Number.isFinite(width) || width <= end || bound + width > maximumPacketOffset) return end;
    return width;
  }

  private rawCompare(test: DecisionTest): RawCompare | undefined {
    if (!littleEndian || this.mode === "legacy" || test.kind !== "compare" || test.right.kind !== "constant") return undefined;
    if (test.operator !== "==" && test.operator !== "&") return undefined;
    let left = test.left;
    let mask: number | undefined;
    if (test.operator === "==" && left.kind === "binary" && left.operator === "&" && left.right.kind === "constant") {
      mask = left.right.value;
      left = left.left;
    }
    if (left.kind !== "load" || left.size === 1) return undefined;
    const all = left.size === 2 ? 0xffff : 0xffffffff;
    const k = test.right.value;
    if (test.operator === "==" && k > all) return undefined;
    return {
      load: left,
      mask: mask === undefined ? undefined : swap(mask & all, left.size),
      constant: swap(test.operator === "&" ? k & all : k, left.size),
    };
  }

  /**
   * A masked comparison whose mask keeps whole bytes of the value (`ip[12:4] & 0xff000000 = 0x0a000000`):
   * in direct access, compare only those bytes, loaded on their own (no mask), when the value is not kept
   * in a register anyway. The bounds check still covers the whole value.
   */
  private narrowing(raw: RawCompare): { offset: number; size: 1 | 2; constant: number } | undefined {
    if (this.mode !== "direct" || raw.mask === undefined || (raw.constant & ~raw.mask) !== 0) return undefined;
    const key = `raw:${formatValue(raw.load)}`;
    if (this.available.has(key) || this.cacheLocations.has(key)) return undefined;
    for (let offset = 0; offset < raw.load.size; offset++) {
      for (const size of [1, 2] as const) {
        const mask = (size === 1 ? 0xff : 0xffff) * 2 ** (8 * offset);
        if (offset + size <= raw.load.size && raw.mask === mask) return { offset, size, constant: Math.floor(raw.constant / 2 ** (8 * offset)) };
      }
    }
    return undefined;
  }

  /** Packet-derived values of a test that may be kept (no registers: those change between tests). */
  private cacheableKeys(test: DecisionTest): Set<string> {
    const keys = new Set<string>();
    const visitLoad = (value: Extract<Value, { kind: "load" }>, raw: boolean): boolean => {
      const pointer = this.mode !== "helper" ? pointerLoad(value) : undefined;
      let pure: boolean;
      if (pointer) {
        pure = visit(pointer.base);
        if (pure && this.mode === "direct") keys.add(pointer.key);
      } else {
        pure = visit(value.offset);
      }
      if (pure) keys.add(raw ? `raw:${formatValue(value)}` : formatValue(value));
      return pure;
    };
    const visit = (value: Value): boolean => {
      switch (value.kind) {
        case "load":
          return visitLoad(value, false);
        case "binary": {
          const left = visit(value.left);
          const right = visit(value.right);
          const pure = left && right;
          if (pure && (value.left.kind !== "constant" || value.right.kind !== "constant")) keys.add(formatValue(value));
          return pure;
        }
        case "register":
        case "packetType":
        case "vlanPresent":
        case "vlanTci":
          return false;
        default:
          return true;
      }
    };
    if (test.kind === "compare") {
      const raw = this.rawCompare(test);
      if (raw) {
        visitLoad(raw.load, true);
      } else {
        visit(test.left);
        visit(test.right);
      }
    } else if (test.kind === "protochain") {
      visit(test.network);
    } else {
      visit(test.value);
    }
    return keys;
  }

  private scan(test: DecisionTest): void {
    const visit = (value: Value): void => {
      switch (value.kind) {
        case "register":
          this.maximumRegister = Math.max(this.maximumRegister, value.index);
          break;
        case "packetType":
          this.usesPacketType = true;
          break;
        case "vlanPresent":
        case "vlanTci":
          this.usesVlanMetadata = true;
          break;
        case "packetLength":
          this.usesLength = true;
          break;
        case "load":
          this.usesPacket = true;
          visit(value.offset);
          break;
        case "binary":
          visit(value.left);
          visit(value.right);
          break;
        default:
          break;
      }
    };
    if (test.kind === "compare") {
      visit(test.left);
      visit(test.right);
    } else if (test.kind === "assign") {
      this.maximumRegister = Math.max(this.maximumRegister, test.register);
      visit(test.value);
    } else {
      visit(test.network);
      this.usesProtochain = true;
      this.usesPacket = true;
    }
  }

  private prologue(): void {
    const a = this.asm;
    const skb = this.options.context === "skb";
    if (this.interpreter) {
      if (this.usesLength) a.store("u64", R10, lengthSlot, R3);
      if (this.usesPacketType && skb) a.store("u64", R10, packetTypeSlot, R4);
    }
    if (this.pullBytes !== undefined) a.mov64(R6, R1).label(this.restartLabel);
    if (this.mode === "direct") {
      if (!this.usesPacket && !(this.usesLength && !skb)) {
        // No packet bytes read: data and data_end are not needed.
      } else if (this.interpreter) a.mov64(this.dataEnd, R1).add64(this.dataEnd, R2).mov64(this.data, R1);
      else if (skb) a.load("u32", this.data, this.contextRegister, skbData).load("u32", this.dataEnd, this.contextRegister, skbDataEnd);
      else a.load("u32", this.data, R1, xdpData).load("u32", this.dataEnd, R1, xdpDataEnd);
    } else {
      a.mov64(R6, R1);
    }
    // Filter registers (geneve offsets, protochain state) start at 0 and must be initialised for the verifier.
    const slots = this.maximumRegister + 1 + (this.usesProtochain ? protochainSlots : 0);
    for (let i = 0; i < slots; i++) a.store("u64", R10, this.registerSlot(i), 0);
  }

  /** The register the code reads the context from: r6 (legacy, helper, and tc direct access with the pull), else r1. */
  private get contextRegister(): Register {
    return this.contextInRegister && this.pullBytes === undefined ? R1 : R6;
  }

  /** w0 = a u32 field of __sk_buff. */
  private loadContextField(offset: number): void {
    this.asm.load("u32", R0, this.contextRegister, offset);
  }

  private registerSlot(index: number): number {
    return registerSlotBase - 8 * index;
  }

  private targetLabel(target: DecisionTarget): string {
    if (target.kind === "accept") return this.exit(this.acceptLabel);
    if (target.kind === "reject") return this.exit(this.rejectLabel);
    return this.labels.get(target)!;
  }

  private exit(label: string): string {
    this.usedExits.add(label);
    return label;
  }

  /** Is `target` the code right after the current node (the next node, or the exit placed after the last node)? */
  private isNext(target: DecisionTarget, next: DecisionNode | undefined): boolean {
    if (target.kind === "node") return target === next;
    return next === undefined && this.fallThroughExit === target.kind;
  }

  /** Jumps on `register <condition> operand`, falling through to the next block where possible. */
  private branch(register: Register, condition: Condition, operand: Register | number, node: DecisionNode, next: DecisionNode | undefined): void {
    const a = this.asm;
    const trueNext = this.isNext(node.whenTrue, next);
    const falseNext = this.isNext(node.whenFalse, next);
    if (trueNext && !falseNext) {
      const inverse = negated[condition];
      if (inverse) {
        a.jumpIf32(register, inverse, operand, this.targetLabel(node.whenFalse));
        return;
      }
      if (condition === "&" && register === R0) {
        a.and32(R0, operand).jumpIf32(R0, "==", 0, this.targetLabel(node.whenFalse));
        return;
      }
    }
    a.jumpIf32(register, condition, operand, this.targetLabel(node.whenTrue));
    if (!falseNext) a.jump(this.targetLabel(node.whenFalse));
  }

  private emitNode(node: DecisionNode, next: DecisionNode | undefined): void {
    const test = node.test;
    if (test.kind === "assign") {
      this.emitValue(test.value);
      this.asm.store("u64", R10, this.registerSlot(test.register), R0);
      if (!this.isNext(node.whenTrue, next)) this.asm.jump(this.targetLabel(node.whenTrue));
      return;
    }
    if (test.kind === "protochain") {
      this.emitProtochain(test);
      this.branch(R0, "==", test.protocol, node, next);
      return;
    }
    const condition: Condition = test.operator;
    const raw = this.rawCompare(test);
    if (raw) {
      const narrow = this.narrowing(raw);
      if (narrow) {
        this.emitLoad(raw.load, true, R0, narrow);
        this.branch(R0, condition, narrow.constant, node, next);
        return;
      }
      let register = this.loadValue(raw.load, true);
      if (raw.mask !== undefined && raw.constant === 0) {
        // (x & mask) == 0: a JSET to the false successor, no AND.
        this.asm.jumpIf32(register, "&", raw.mask, this.targetLabel(node.whenFalse));
        if (!this.isNext(node.whenTrue, next)) this.asm.jump(this.targetLabel(node.whenTrue));
        return;
      }
      if (raw.mask !== undefined) {
        if (register !== R0) this.asm.mov32(R0, register);
        this.asm.and32(R0, raw.mask);
        register = R0;
      }
      this.branch(register, condition, raw.constant, node, next);
      return;
    }
    if (test.right.kind === "constant") {
      const register = this.valueIn(test.left, R0);
      this.branch(register, condition, test.right.value, node, next);
      return;
    }
    this.emitValue(test.left);
    const slot = this.spill();
    this.emitValue(test.right);
    this.asm.mov32(this.scratch, R0).load("u32", R0, R10, slot);
    this.scratchHolds = undefined;
    this.unspill();
    this.branch(R0, condition, this.scratch, node, next);
  }

  private spill(): number {
    if (this.spillDepth >= spillSlots) throw new UsageError("generate filter", "the arithmetic expression is nested too deeply", `at most ${spillSlots} levels of nesting`);
    const slot = -8 * (++this.spillDepth);
    this.asm.store("u32", R10, slot, R0);
    return slot;
  }

  private unspill(): void {
    this.spillDepth--;
  }

  /**
   * The register holding a value: the register it is kept in, r0 after reloading
   * it from the stack, or after computing it (`compute(target)` computes into
   * `target`: straight into the register it is kept in when `direct`, else into r0).
   */
  private withCache(key: string, compute: (target: Register) => void, direct: boolean, preferred: Register = R0): Register {
    const location = this.available.get(key);
    if (typeof location === "string") return location;
    if (location !== undefined) {
      this.asm.load("u64", preferred, R10, location);
      return preferred;
    }
    const keep = this.cacheLocations.get(key);
    if (typeof keep === "string" && direct) {
      compute(keep);
      this.keep(key, keep);
      return keep;
    }
    compute(preferred);
    if (keep !== undefined) {
      if (typeof keep === "string") this.asm.mov64(keep, preferred);
      else this.asm.store("u64", R10, keep, preferred);
      this.keep(key, keep);
    }
    return preferred;
  }

  /** Records where a value is kept; a register shared by values of disjoint ranges forgets the previous one. */
  private keep(key: string, location: Location): void {
    for (const [other, where] of this.available) if (where === location) this.available.delete(other);
    this.available.set(key, location);
  }

  /** Computes a value into w0 (upper half zero), reusing it when an earlier test on every path computed it. */
  private emitValue(value: Value, target: Register = R0): void {
    const register = this.valueIn(value, target);
    if (register !== target) this.asm.mov64(target, register);
  }

  /** The register holding the value: where it is kept, or `preferred` (or r0) after computing it. */
  private valueIn(value: Value, preferred: Register): Register {
    if (value.kind === "load") return this.loadValue(value, false, preferred);
    if (value.kind === "binary") return this.withCache(formatValue(value), (into) => this.computeBinary(value, into), true, preferred);
    this.computeValue(value);
    return R0;
  }

  /** target = left (operator) right; constant right operands are applied in place. */
  private computeBinary(value: Extract<Value, { kind: "binary" }>, target: Register): void {
    if (value.right.kind === "constant") {
      this.emitValue(value.left, target);
      this.emitOperation(value.operator, value.right.value, target);
      return;
    }
    this.computeValue(value);
    if (target !== R0) this.asm.mov64(target, R0);
  }

  /** The register holding the load, big-endian (raw false) or as the bytes lie in memory (raw true, direct access and helper only). */
  private loadValue(value: Extract<Value, { kind: "load" }>, raw: boolean, preferred: Register = R0): Register {
    return this.withCache(raw ? `raw:${formatValue(value)}` : formatValue(value), (target) => this.emitLoad(value, raw, target), this.mode !== "legacy", preferred);
  }

  private computeValue(value: Value): void {
    const a = this.asm;
    switch (value.kind) {
      case "constant":
        a.mov32(R0, value.value | 0);
        return;
      case "packetLength":
        if (this.interpreter) a.load("u64", R0, R10, lengthSlot);
        else if (this.options.context === "skb") this.loadContextField(this.options.packetLength === "wire" ? skbWireLength : skbLength);
        else a.mov64(R0, this.dataEnd).sub64(R0, this.data);
        return;
      case "packetType":
        if (this.options.context === "xdp") a.mov32(R0, 0);
        else if (this.interpreter) a.load("u64", R0, R10, packetTypeSlot);
        else this.loadContextField(skbPacketType);
        return;
      case "vlanPresent":
      case "vlanTci":
        // XDP has no VLAN metadata, and the interpreter prologue passes none: tags are only in the data there.
        if (this.options.context === "xdp" || this.interpreter) a.mov32(R0, 0);
        else this.loadContextField(value.kind === "vlanPresent" ? skbVlanPresent : skbVlanTci);
        return;
      case "register":
        a.load("u32", R0, R10, this.registerSlot(value.index));
        return;
      case "load":
        this.emitLoad(value, false, R0);
        return;
      case "binary": {
        const operator = value.operator;
        if (value.right.kind === "constant") {
          this.emitValue(value.left);
          this.emitOperation(operator, value.right.value);
          return;
        }
        this.emitValue(value.left);
        const slot = this.spill();
        this.emitValue(value.right);
        a.mov32(this.scratch, R0).load("u32", R0, R10, slot);
        this.scratchHolds = undefined;
        this.unspill();
        this.emitOperation(operator, this.scratch);
        return;
      }
    }
  }

  /** w0 = w0 (operator) operand, with classic BPF's rules: x/0 and x%0 reject, shifts of 32 or more give 0. */
  private emitOperation(operator: string, operand: Register | number, dst: Register = R0): void {
    const a = this.asm;
    if (typeof operand === "number") {
      const k = operand >>> 0;
      switch (operator) {
        case "+": a.add32(dst, k); return;
        case "-": a.sub32(dst, k); return;
        case "*": a.mul32(dst, k); return;
        case "&": a.and32(dst, k); return;
        case "|": a.or32(dst, k); return;
        case "^": a.xor32(dst, k); return;
        case "/":
        case "%":
          if (k === 0) {
            this.rejectAlways(dst);
            return;
          }
          if (operator === "/") a.div32(dst, k);
          else a.mod32(dst, k);
          return;
        case "<<":
        case ">>":
          if (k >= 32) a.mov32(dst, 0);
          else if (operator === "<<") a.leftShift32(dst, k);
          else a.rightShift32(dst, k);
          return;
      }
      throw new Error(`unknown operator ${operator}`);
    }
    switch (operator) {
      case "+": a.add32(R0, operand); return;
      case "-": a.sub32(R0, operand); return;
      case "*": a.mul32(R0, operand); return;
      case "&": a.and32(R0, operand); return;
      case "|": a.or32(R0, operand); return;
      case "^": a.xor32(R0, operand); return;
      case "/":
      case "%":
        a.jumpIf32(operand, "==", 0, this.exit(this.rejectLabel));
        if (operator === "/") a.div32(R0, operand);
        else a.mod32(R0, operand);
        return;
      case "<<":
      case ">>": {
        const inRange = this.newLabel("shift");
        const done = this.newLabel("shifted");
        a.jumpIf32(operand, "<", 32, inRange).mov32(R0, 0).jump(done).label(inRange);
        if (operator === "<<") a.leftShift32(R0, operand);
        else a.rightShift32(R0, operand);
        a.label(done);
        return;
      }
    }
    throw new Error(`unknown operator ${operator}`);
  }

  /**
   * Rejects the packet here, always (a load no packet can satisfy, a division by zero), with a conditional
   * jump: the code the test goes on to emit stays reachable in the control-flow graph (the verifier refuses
   * unreachable instructions) and is dead only in the verifier's walk, which allows it.
   */
  private rejectAlways(register: Register): void {
    this.asm.mov32(register, 0).jumpIf32(register, "==", 0, this.exit(this.rejectLabel));
  }

  /**
   * Direct access: `scratch = base + checked; if scratch > data_end goto fail`, marking `checked` bytes
   * from the base as proven on this path. When the scratch register already holds `base + n` on every
   * path here (an earlier check), it is moved by the difference instead of computed again.
   */
  private emitBoundsCheck(key: string, base: Register, checked: number, fail: string): void {
    const a = this.asm;
    const scratch = this.scratch;
    const held = this.scratchHolds;
    if (key === "" && this.biasAllowed && !(held?.key === "")) {
      a.add64(this.data, checked - this.dataBias).jumpIf(this.data, ">", this.dataEnd, this.exit(fail));
      this.dataBias = checked;
      this.moved = true;
      this.proven.set(key, checked);
      return;
    }
    const bias = key === "" ? this.dataBias : this.pointerBiases.get(key)!;
    if (key !== "" && this.moveData && held?.key !== key && (this.available.get(key) === base || !this.cacheLocations.has(key))) {
      // The pointer itself moves (it is in a register, kept nowhere else): loads from it subtract the new bias.
      if (checked !== bias) a.add64(base, checked - bias);
      a.jumpIf(base, ">", this.dataEnd, this.exit(fail));
      this.pointerBiases.set(key, checked);
      this.moved = true;
      this.proven.set(key, checked);
      return;
    }
    if (held?.key === key) {
      if (checked !== held.end) a.add64(scratch, checked - held.end);
    } else {
      a.mov64(scratch, base);
      if (checked !== bias) a.add64(scratch, checked - bias);
    }
    a.jumpIf(scratch, ">", this.dataEnd, this.exit(fail));
    this.scratchHolds = { key, end: checked };
    this.proven.set(key, checked);
  }

  /**
   * target = load of `size` bytes at the offset, big-endian unless `raw`; out of bounds rejects the packet.
   * `narrow` (direct access, raw): read only `narrow.size` bytes at `narrow.offset` into the value, after the
   * bounds check for the whole value (a packet too short for it fails the test, as in libpcap).
   */
  private emitLoad(value: Extract<Value, { kind: "load" }>, raw: boolean, target: Register, narrow?: { offset: number; size: 1 | 2 }): void {
    const a = this.asm;
    const { offset, size } = value;
    const type = size === 1 ? "u8" : size === 2 ? "u16" : "u32";
    if (this.mode === "helper") {
      // bpf_skb_load_bytes(ctx, offset, buffer, size): negative on an out-of-bounds read.
      if (offset.kind === "constant") a.mov32(R0, offset.value | 0);
      else this.emitValue(offset);
      if (offset.kind !== "constant" || offset.value > 0x7fffffff) a.jumpIf32(R0, ">", 0x7fffffff, this.exit(this.rejectLabel));
      a.mov64(R2, R0).mov64(R1, R6).mov64(R3, R10).add64(R3, loadBufferSlot).mov64(R4, size)
        .call("skb_load_bytes")
        .jumpIf(R0, "!=", 0, this.exit(this.rejectLabel))
        .load(type, target, R10, loadBufferSlot);
      if (size > 1 && !raw) a.toBigEndian(target, size === 2 ? 16 : 32);
      return;
    }
    if (this.mode === "legacy") {
      if (offset.kind === "constant") {
        if (offset.value > 0x7fffffff) {
          this.rejectAlways(R0);
          return;
        }
        a.loadPacketAbsolute(type, offset.value);
      } else {
        const pointer = pointerLoad(value);
        if (pointer) {
          // A small base in the index register, the displacement in the instruction.
          let index = this.valueIn(pointer.base, R7);
          if (index === R0) {
            a.mov64(R7, R0);
            index = R7;
          }
          a.loadPacketIndirect(type, index, pointer.displacement);
        } else {
          this.emitValue(offset, R7);
          // Negative offsets mean SKF_NET_OFF/SKF_LL_OFF to the kernel: such offsets are simply out of bounds here.
          a.jumpIf32(R7, ">", 0x7fffffff, this.exit(this.rejectLabel)).loadPacketIndirect(type, R7, 0);
        }
      }
      if (target !== R0) a.mov64(target, R0);
      return;
    }
    const scratch = this.scratch;
    if (offset.kind === "constant") {
      if (offset.value > maximumPacketOffset - size) {
        this.rejectAlways(target);
        return;
      }
      const end = offset.value + size;
      if (end > (this.proven.get("") ?? 0)) {
        const checked = this.checkedEnd("", end, 0);
        // The link-layer header is always in the linear part: a shorter packet really is too short.
        this.emitBoundsCheck("", this.data, checked, checked <= this.linearHeaderBytes ? this.rejectLabel : this.failLabel);
      }
      a.load(narrow ? narrowTypes[narrow.size] : type, target, this.data, offset.value + (narrow?.offset ?? 0) - this.dataBias);
    } else {
      const pointer = pointerLoad(value);
      if (pointer) {
        // data + base, computed once and kept; each load checks (once per path) and reads at a constant displacement.
        // A pointer computed afresh is a new pointer to the verifier (range 0), whatever earlier checks of the same
        // expression proved: the check must be repeated.
        if (this.available.get(pointer.key) === undefined) {
          this.proven.delete(pointer.key);
          if (this.scratchHolds?.key === pointer.key) this.scratchHolds = undefined;
        }
        const base = this.withCache(pointer.key, (into) => {
          this.emitValue(pointer.base, into);
          a.add64(into, this.data);
          this.pointerBiases.set(pointer.key, this.dataBias);
        }, true);
        const end = pointer.displacement + size;
        if (end > (this.proven.get(pointer.key) ?? 0)) {
          this.emitBoundsCheck(pointer.key, base, this.checkedEnd(pointer.key, end, pointer.bound), this.failLabel);
        }
        a.load(narrow ? narrowTypes[narrow.size] : type, target, base, pointer.displacement + (narrow?.offset ?? 0) - this.pointerBiases.get(pointer.key)!);
      } else {
        this.emitValue(offset);
        // The verifier only trusts a bounds check when the variable offset plus the access stays within 0xffff.
        a.jumpIf(R0, ">", maximumPacketOffset - 4, this.exit(this.failLabel))
          .add64(R0, this.data).mov64(scratch, R0).add64(scratch, size).jumpIf(scratch, ">", this.dataEnd, this.exit(this.failLabel))
          .load(narrow ? narrowTypes[narrow.size] : type, target, R0, narrow?.offset ?? 0);
        this.scratchHolds = undefined;
      }
    }
    if (narrow) return;
    if (size > 1 && !raw) a.toBigEndian(target, size === 2 ? 16 : 32);
  }

  /**
   * libpcap's protochain walk as a loop: state in filter-register stack slots
   * (network offset, header offset, next header, bytes walked). In kernel code the
   * loop head is a may_goto, so the verifier checks the body until the state stops
   * growing (the offsets are bounded) instead of unrolling every header; the walk
   * ends, as an out-of-bounds load, once the headers followed add up to
   * protochainMaximumBytes (only a chain that loops through AH gets there).
   */
  private emitProtochain(test: Extract<DecisionTest, { kind: "protochain" }>): void {
    const a = this.asm;
    const base = this.maximumRegister + 1;
    const network = { kind: "register", index: base } as const;
    const offset = { kind: "register", index: base + 1 } as const;
    const nextSlot = this.registerSlot(base + 2);
    const walkedSlot = this.registerSlot(base + 3);
    const offsetSlot = this.registerSlot(base + 1);
    this.scratchHolds = undefined;
    this.emitValue(test.network);
    a.store("u64", R10, this.registerSlot(base), R0);
    const field = (delta: number): Value => ({ kind: "load", offset: { kind: "binary", operator: "+", left: network, right: { kind: "constant", value: delta } }, size: 1 });
    const atOffset = (delta: number): Value => ({
      kind: "load",
      offset: { kind: "binary", operator: "+", left: { kind: "binary", operator: "+", left: network, right: offset }, right: { kind: "constant", value: delta } },
      size: 1,
    });
    if (test.version === 6) {
      this.emitValue(field(6));
      a.store("u64", R10, nextSlot, R0).mov64(R0, 40).store("u64", R10, offsetSlot, R0);
    } else {
      this.emitValue(field(9));
      a.store("u64", R10, nextSlot, R0);
      this.emitValue({ kind: "binary", operator: "<<", left: { kind: "binary", operator: "&", left: field(0), right: { kind: "constant", value: 0xf } }, right: { kind: "constant", value: 2 } });
      a.store("u64", R10, offsetSlot, R0);
    }
    a.store("u64", R10, walkedSlot, 0);
    const loop = this.newLabel("chain");
    const extension = this.newLabel("chain_extension");
    const authentication = this.newLabel("chain_ah");
    const done = this.newLabel("chain_done");
    a.label(loop);
    this.scratchHolds = undefined;
    // The interpreter has no loop budget; the kernel's (millions of iterations) is never reached before the byte limit.
    if (!this.interpreter) a.mayGoto(this.options.undecidedValue !== undefined ? this.exit(this.undecidedLabel) : done);
    a.load("u64", R0, R10, nextSlot);
    a.jumpIf(R0, "==", test.protocol, done).jumpIf(R0, "==", 59, done);
    const scratch = this.scratch;
    if (test.version === 6) {
      for (const header of [0, 60, 43, 44]) a.jumpIf(R0, "==", header, extension);
    }
    a.jumpIf(R0, "==", 51, authentication).jump(done);
    // Extension header: offset += (length + 1) * 8; AH: offset = (length + 2) * 4 (libpcap's quirk).
    for (const [label, ah] of [[extension, false], [authentication, true]] as const) {
      if (label === extension && test.version === 4) continue;
      a.label(label);
      // Past the byte limit, or at an offset no packet reaches: reject, as the load would. Both bounds keep
      // the loop state from growing, so the verifier sees it converge.
      a.load("u64", scratch, R10, walkedSlot).jumpIf(scratch, ">=", protochainMaximumBytes, this.exit(this.rejectLabel));
      a.load("u64", scratch, R10, offsetSlot).jumpIf(scratch, ">", maximumPacketOffset, this.exit(this.rejectLabel));
      this.emitValue(atOffset(1));
      if (ah) a.add32(R0, 2).mul32(R0, 4);
      else a.add32(R0, 1).mul32(R0, 8);
      a.load("u64", scratch, R10, walkedSlot).add64(scratch, R0).store("u64", R10, walkedSlot, scratch);
      if (!ah) a.load("u32", scratch, R10, offsetSlot).add32(R0, scratch);
      const lengthSlot = this.spill();
      this.emitValue(atOffset(0));
      a.store("u64", R10, nextSlot, R0).load("u32", R0, R10, lengthSlot).store("u64", R10, offsetSlot, R0);
      this.unspill();
      a.jump(loop);
    }
    a.label(done).load("u64", R0, R10, nextSlot);
    this.scratchHolds = undefined;
  }
}

/** Stack slots the protochain loop uses beyond the filter's own registers. */
const protochainSlots = 4;
/** Values shared between tests kept on the stack, below the filter registers. */
const maximumCachedValues = 16;

function describeTest(test: DecisionTest): string {
  switch (test.kind) {
    case "compare":
      return `${formatValue(test.left)} ${test.operator === "&" ? "&" : test.operator} ${formatValue(test.right)}`;
    case "protochain":
      return `protochain ${test.protocol} from IPv${test.version} header at ${formatValue(test.network)}`;
    case "assign":
      return `r${test.register} = ${formatValue(test.value)}`;
  }
}


/** Every packet load a test performs (including loads inside offsets). */
function testLoads(test: DecisionTest): Extract<Value, { kind: "load" }>[] {
  const loads: Extract<Value, { kind: "load" }>[] = [];
  const visit = (value: Value): void => {
    if (value.kind === "load") {
      loads.push(value);
      visit(value.offset);
    } else if (value.kind === "binary") {
      visit(value.left);
      visit(value.right);
    }
  };
  if (test.kind === "compare") {
    visit(test.left);
    visit(test.right);
  } else if (test.kind === "assign") {
    visit(test.value);
  } else {
    visit(test.network);
  }
  return loads;
}

/**
 * A copy of the graph in which nodes with the same test and the same successors
 * are one node (libpcap's gencode repeats the port tests after each protocol
 * test, for example). The graph given is not changed.
 */
function mergeIdenticalNodes(root: DecisionTarget): DecisionTarget {
  if (root.kind !== "node") return root;
  const nodes = topologicalNodes(root);
  const replacement = new Map<DecisionTarget, DecisionTarget>();
  const identities = new Map<DecisionTarget, number>();
  const byKey = new Map<string, DecisionNode>();
  const identity = (target: DecisionTarget): string => (target.kind === "node" ? String(identities.get(target)!) : target.kind);
  for (const node of [...nodes].reverse()) {
    const whenTrue = replacement.get(node.whenTrue) ?? node.whenTrue;
    const whenFalse = replacement.get(node.whenFalse) ?? node.whenFalse;
    const key = `${JSON.stringify(node.test)}|${identity(whenTrue)}|${identity(whenFalse)}`;
    let merged = byKey.get(key);
    if (!merged) {
      merged = { kind: "node", id: node.id, test: node.test, whenTrue, whenFalse };
      byKey.set(key, merged);
      identities.set(merged, identities.size);
    }
    replacement.set(node, merged);
  }
  return replacement.get(root)!;
}
