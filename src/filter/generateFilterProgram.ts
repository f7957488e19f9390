import { Assembler, R0, R1, R2, R6, R7, R8, R9, R10, type AssembledProgram, type Condition, type Register } from "../asm/assembler.js";
import { UsageError } from "../sys/errors.js";
import type { CompiledFilter } from "./compileFilter.js";
import { topologicalNodes, type DecisionNode, type DecisionTarget, type DecisionTest } from "./decisionGraph.js";
import { protochainMaximumHeaders } from "./evaluatePredicate.js";
import { formatValue, type Value } from "./predicate.js";

/**
 * Where the filter runs.
 * - "skb": socket filters and tc (sched_cls): packet bytes through LD_ABS/LD_IND,
 *   which end the program with 0 on an out-of-bounds load, exactly like classic BPF;
 *   `len` is skb->len, inbound/outbound use skb->pkt_type.
 * - "xdp": direct packet access between data and data_end with the bounds checks the
 *   verifier needs; `len` is data_end - data; every packet is inbound.
 */
export type FilterContext = "skb" | "xdp";

export interface GenerateFilterOptions {
  context: FilterContext;
  /** r0 when the packet matches (default: 0x40000 for skb like tcpdump's snap length, XDP_PASS for xdp). */
  acceptValue?: number;
  /** r0 when it does not (default: 0 for skb, XDP_DROP for xdp). Must be 0 for skb. */
  rejectValue?: number;
  /**
   * "kernel" (default): read data/data_end/len/pkt_type from the program's context.
   * "interpreter": for the asm interpreter in tests: r1 = packet, r2 = captured length,
   * r3 = wire length, r4 = packet type.
   */
  prologue?: "kernel" | "interpreter";
  /**
   * skb packet loads: "legacy" (default) LD_ABS/LD_IND, the smallest code, which
   * ends the program with 0 on an out-of-bounds load (so the reject value must be 0
   * and the code cannot be a subprogram); "helper" bpf_skb_load_bytes, which allows
   * any reject value and use as a subprogram.
   */
  skbLoads?: "legacy" | "helper";
  /** Prefix for every label, so the code can be appended to another program. */
  labelPrefix?: string;
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
/** xdp_md field offsets (uapi, stable). */
const xdpData = 0;
const xdpDataEnd = 4;
/** Stack: spill slots for nested arithmetic grow down from r10-8; a load buffer, filter registers and cached values below. */
const spillSlots = 16;
const loadBufferSlot = -8 * spillSlots - 8;
const registerSlotBase = loadBufferSlot - 8;

/**
 * Generates a complete eBPF program from a compiled filter's decision graph:
 * one block per test, tests in libpcap's order, constant offsets loaded
 * directly, shared accept/reject exits. Registers: r6 context (skb) or data
 * (xdp), r7 index scratch (skb) or data_end (xdp), r8 packet type, r9 wire length.
 */
export function generateFilterProgram(filter: CompiledFilter, options: GenerateFilterOptions): GeneratedFilter {
  checkOptions(options);
  const generator = new FilterCodeGenerator(options);
  const assembler = generator.build(filter.graph);
  return { ...assembler.finish(), annotations: generator.annotations };
}

/**
 * The filter as a bpf-to-bpf subprogram to append to another program:
 * `main.mov64(R1, ctx).callLocal(entry)…; main.append(assembler)`. It takes the
 * context in r1 and returns the accept or reject value in r0. skb code uses
 * bpf_skb_load_bytes (LD_ABS is not allowed with subprograms).
 */
export function generateFilterSubprogram(
  filter: CompiledFilter,
  options: Omit<GenerateFilterOptions, "skbLoads" | "prologue"> & { labelPrefix: string },
): { assembler: Assembler; entry: string } {
  const full: GenerateFilterOptions = { ...options, skbLoads: "helper", prologue: "kernel" };
  checkOptions(full);
  const generator = new FilterCodeGenerator(full);
  const entry = `${options.labelPrefix}filter`;
  const assembler = generator.build(filter.graph, entry);
  return { assembler, entry };
}

function checkOptions(options: GenerateFilterOptions): void {
  if (options.context === "skb" && options.skbLoads !== "helper" && (options.rejectValue ?? 0) !== 0) {
    throw new UsageError("generate filter", "with LD_ABS loads the skb context rejects with 0 (an out-of-bounds load ends the program with 0)", "use rejectValue 0, skbLoads \"helper\", or the xdp context");
  }
}

class FilterCodeGenerator {
  private readonly asm = new Assembler();
  private readonly labels = new Map<DecisionNode, string>();
  readonly annotations = new Map<number, string>();
  private readonly prefix: string;
  private cacheSlotBase = 0;
  private readonly acceptLabel: string;
  private readonly rejectLabel: string;
  private readonly usedExits = new Set<string>();
  private spillDepth = 0;
  private maximumRegister = -1;
  private usesPacketType = false;
  private usesProtochain = false;
  /** XDP: bytes from data already proven to lie before data_end on every path here. */
  private proven = 0;
  /** Values computed on every path here, and the stack slot holding each. */
  private available = new Map<string, number>();
  /** Values worth keeping (used by two or more tests) → stack slot. */
  private readonly cacheSlots = new Map<string, number>();

  constructor(private readonly options: GenerateFilterOptions) {
    this.prefix = options.labelPrefix ?? "";
    this.acceptLabel = this.asm.newLabel(`${this.prefix}accept`);
    this.rejectLabel = this.asm.newLabel(`${this.prefix}reject`);
  }

  private newLabel(name: string): string {
    return this.asm.newLabel(`${this.prefix}${name}`);
  }

  build(root: DecisionTarget, entryLabel?: string): Assembler {
    if (entryLabel !== undefined) this.asm.label(entryLabel);
    const nodes = topologicalNodes(root);
    const uses = new Map<string, number>();
    for (const node of nodes) {
      this.scan(node.test);
      this.labels.set(node, this.newLabel(`test${node.id}_`));
      for (const key of cacheableKeys(node.test)) uses.set(key, (uses.get(key) ?? 0) + 1);
    }
    this.cacheSlotBase = this.registerSlot(this.maximumRegister + 1 + (this.usesProtochain ? protochainSlots : 0));
    const shared = [...uses].filter(([, count]) => count >= 2);
    // Keep only the largest shared values: a part always used inside a larger shared value is not stored on its own.
    const worth = shared.filter(([key, count]) => !shared.some(([other, otherCount]) => other !== key && other.includes(key) && otherCount >= count));
    for (const [key] of worth) {
      if (this.cacheSlots.size < maximumCachedValues) this.cacheSlots.set(key, this.cacheSlotBase - 8 * this.cacheSlots.size);
    }
    this.prologue();
    if (root.kind !== "node") this.asm.jump(this.targetLabel(root));
    // What every path into a node has established: proven packet length and cached values.
    const entry = new Map<DecisionNode, { proven: number; available: Map<string, number> }>();
    if (root.kind === "node") entry.set(root, { proven: 0, available: new Map() });
    nodes.forEach((node, index) => {
      this.asm.label(this.labels.get(node)!);
      this.annotations.set(this.asm.length, describeTest(node.test));
      const state = entry.get(node) ?? { proven: 0, available: new Map() };
      this.proven = state.proven;
      this.available = new Map(state.available);
      const next = nodes[index + 1];
      this.emitNode(node, next);
      for (const successor of [node.whenTrue, node.whenFalse]) {
        if (successor.kind !== "node") continue;
        const existing = entry.get(successor);
        if (!existing) {
          entry.set(successor, { proven: this.proven, available: new Map(this.available) });
        } else {
          existing.proven = Math.min(existing.proven, this.proven);
          for (const [key, slot] of existing.available) if (this.available.get(key) !== slot) existing.available.delete(key);
        }
      }
    });
    const context = this.options.context;
    // Only exits something jumps to: the verifier refuses unreachable instructions.
    if (this.usedExits.has(this.acceptLabel)) this.asm.label(this.acceptLabel).return(this.options.acceptValue ?? (context === "xdp" ? xdpPass : 0x40000));
    if (this.usedExits.has(this.rejectLabel)) this.asm.label(this.rejectLabel).return(this.options.rejectValue ?? (context === "xdp" ? xdpDrop : 0));
    const lowest = this.cacheSlots.size > 0 ? this.cacheSlotBase - 8 * (this.cacheSlots.size - 1) : this.cacheSlotBase + 8;
    if (lowest < -stackSize) throw new UsageError("generate filter", "the filter needs more stack than eBPF allows", "a simpler filter");
    return this.asm;
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
        case "load":
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
    }
  }

  private prologue(): void {
    const a = this.asm;
    const interpreter = this.options.prologue === "interpreter";
    if (this.options.context === "skb") {
      a.mov64(R6, R1);
      if (interpreter) {
        a.mov64(R9, "r3");
        if (this.usesPacketType) a.mov64(R8, "r4");
      } else {
        a.load("u32", R9, R1, skbLength);
        if (this.usesPacketType) a.load("u32", R8, R1, skbPacketType);
      }
    } else {
      if (interpreter) {
        a.mov64(R6, R1).mov64(R7, R1).add64(R7, R2).mov64(R9, "r3");
      } else {
        a.load("u32", R6, R1, xdpData).load("u32", R7, R1, xdpDataEnd).mov64(R9, R7).sub64(R9, R6);
      }
      if (this.usesPacketType) a.mov64(R8, 0);
    }
    // Filter registers (geneve offsets, protochain state) start at 0 and must be initialised for the verifier.
    const slots = this.maximumRegister + 1 + (this.usesProtochain ? protochainSlots : 0);
    for (let i = 0; i < slots; i++) a.store("u64", R10, this.registerSlot(i), 0);
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

  private branch(condition: Condition, operand: Register | number, node: DecisionNode, next: DecisionNode | undefined): void {
    const whenTrue = this.targetLabel(node.whenTrue);
    const whenFalse = this.targetLabel(node.whenFalse);
    this.asm.jumpIf32(R0, condition, operand, whenTrue);
    if (node.whenFalse !== next) this.asm.jump(whenFalse);
  }

  private emitNode(node: DecisionNode, next: DecisionNode | undefined): void {
    const test = node.test;
    if (test.kind === "assign") {
      this.emitValue(test.value);
      this.asm.store("u64", R10, this.registerSlot(test.register), R0);
      if (node.whenTrue !== next) this.asm.jump(this.targetLabel(node.whenTrue));
      return;
    }
    if (test.kind === "protochain") {
      this.emitProtochain(test);
      this.branch("==", test.protocol, node, next);
      return;
    }
    const condition: Condition = test.operator;
    if (test.right.kind === "constant") {
      this.emitValue(test.left);
      this.branch(condition, test.right.value, node, next);
      return;
    }
    this.emitValue(test.left);
    const slot = this.spill();
    this.emitValue(test.right);
    this.asm.mov32(R1, R0).load("u32", R0, R10, slot);
    this.unspill();
    this.branch(condition, R1, node, next);
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

  /** Computes a value into w0 (upper half zero), reusing it when an earlier test on every path computed it. */
  private emitValue(value: Value): void {
    const key = value.kind === "load" || value.kind === "binary" ? formatValue(value) : undefined;
    if (key !== undefined) {
      const slot = this.available.get(key);
      if (slot !== undefined) {
        this.asm.load("u64", R0, R10, slot);
        return;
      }
    }
    this.computeValue(value);
    if (key !== undefined) {
      const slot = this.cacheSlots.get(key);
      if (slot !== undefined) {
        this.asm.store("u64", R10, slot, R0);
        this.available.set(key, slot);
      }
    }
  }

  private computeValue(value: Value): void {
    const a = this.asm;
    switch (value.kind) {
      case "constant":
        a.mov32(R0, value.value | 0);
        return;
      case "packetLength":
        a.mov32(R0, R9);
        return;
      case "packetType":
        a.mov32(R0, R8);
        return;
      case "register":
        a.load("u32", R0, R10, this.registerSlot(value.index));
        return;
      case "load":
        this.emitLoad(value.offset, value.size);
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
        a.mov32(R1, R0).load("u32", R0, R10, slot);
        this.unspill();
        this.emitOperation(operator, R1);
        return;
      }
    }
  }

  /** w0 = w0 (operator) operand, with classic BPF's rules: x/0 and x%0 reject, shifts of 32 or more give 0. */
  private emitOperation(operator: string, operand: Register | number): void {
    const a = this.asm;
    if (typeof operand === "number") {
      const k = operand >>> 0;
      switch (operator) {
        case "+": a.add32(R0, k); return;
        case "-": a.sub32(R0, k); return;
        case "*": a.mul32(R0, k); return;
        case "&": a.and32(R0, k); return;
        case "|": a.or32(R0, k); return;
        case "^": a.xor32(R0, k); return;
        case "/":
        case "%":
          if (k === 0) {
            a.jump(this.exit(this.rejectLabel));
            return;
          }
          if (operator === "/") a.div32(R0, k);
          else a.mod32(R0, k);
          return;
        case "<<":
        case ">>":
          if (k >= 32) a.mov32(R0, 0);
          else if (operator === "<<") a.leftShift32(R0, k);
          else a.rightShift32(R0, k);
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

  /** w0 = big-endian load of `size` bytes at the offset; out of bounds rejects the packet. */
  private emitLoad(offset: Value, size: 1 | 2 | 4): void {
    const a = this.asm;
    const type = size === 1 ? "u8" : size === 2 ? "u16" : "u32";
    if (this.options.context === "skb" && this.options.skbLoads === "helper") {
      // bpf_skb_load_bytes(ctx, offset, buffer, size): negative on an out-of-bounds read.
      if (offset.kind === "constant") a.mov32(R0, offset.value | 0);
      else this.emitValue(offset);
      a.jumpIf32(R0, ">", 0x7fffffff, this.exit(this.rejectLabel))
        .mov64(R2, R0).mov64(R1, R6).mov64("r3", R10).add64("r3", loadBufferSlot).mov64("r4", size)
        .call("skb_load_bytes")
        .jumpIf(R0, "!=", 0, this.exit(this.rejectLabel))
        .load(type, R0, R10, loadBufferSlot);
      if (size > 1) a.toBigEndian(R0, size === 2 ? 16 : 32);
      return;
    }
    if (this.options.context === "skb") {
      if (offset.kind === "constant") {
        if (offset.value > 0x7fffffff) {
          a.jump(this.exit(this.rejectLabel));
          return;
        }
        a.loadPacketAbsolute(type, offset.value);
        return;
      }
      this.emitValue(offset);
      // Negative offsets mean SKF_NET_OFF/SKF_LL_OFF to the kernel: such offsets are simply out of bounds here.
      a.jumpIf32(R0, ">", 0x7fffffff, this.exit(this.rejectLabel)).mov64(R7, R0).loadPacketIndirect(type, R7, 0);
      return;
    }
    if (offset.kind === "constant") {
      if (offset.value > 0xffff - size) {
        a.jump(this.exit(this.rejectLabel));
        return;
      }
      const end = offset.value + size;
      if (end > this.proven) {
        a.mov64(R1, R6).add64(R1, end).jumpIf(R1, ">", R7, this.exit(this.rejectLabel));
        this.proven = end;
      }
      a.load(type, R0, R6, offset.value);
    } else {
      this.emitValue(offset);
      // The verifier only trusts a bounds check when the variable offset plus the access stays within 0xffff.
      a.jumpIf(R0, ">", 0xffff - 4, this.exit(this.rejectLabel))
        .mov64(R1, R6).add64(R1, R0).mov64(R2, R1).add64(R2, size).jumpIf(R2, ">", R7, this.exit(this.rejectLabel))
        .load(type, R0, R1, 0);
    }
    if (size > 1) a.toBigEndian(R0, size === 2 ? 16 : 32);
  }

  /**
   * libpcap's protochain walk as a bounded loop: state in filter-register
   * stack slots (network offset, header offset, next header, count).
   */
  private emitProtochain(test: Extract<DecisionTest, { kind: "protochain" }>): void {
    const a = this.asm;
    const base = this.maximumRegister + 1;
    const network = { kind: "register", index: base } as const;
    const offset = { kind: "register", index: base + 1 } as const;
    const nextSlot = this.registerSlot(base + 2);
    const countSlot = this.registerSlot(base + 3);
    const offsetSlot = this.registerSlot(base + 1);
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
    a.store("u64", R10, countSlot, 0);
    const loop = this.newLabel("chain");
    const extension = this.newLabel("chain_extension");
    const authentication = this.newLabel("chain_ah");
    const done = this.newLabel("chain_done");
    a.label(loop).load("u64", R0, R10, nextSlot);
    a.jumpIf(R0, "==", test.protocol, done).jumpIf(R0, "==", 59, done);
    a.load("u64", R1, R10, countSlot).jumpIf(R1, ">=", protochainMaximumHeaders, done).add64(R1, 1).store("u64", R10, countSlot, R1);
    if (test.version === 6) {
      for (const header of [0, 60, 43, 44]) a.jumpIf(R0, "==", header, extension);
    }
    a.jumpIf(R0, "==", 51, authentication).jump(done);
    // Extension header: offset += (length + 1) * 8.
    for (const [label, ah] of [[extension, false], [authentication, true]] as const) {
      if (label === extension && test.version === 4) continue;
      a.label(label);
      this.emitValue(atOffset(1));
      if (ah) a.add32(R0, 2).mul32(R0, 4);
      else a.add32(R0, 1).mul32(R0, 8).load("u32", R1, R10, offsetSlot).add32(R0, R1);
      const lengthSlot = this.spill();
      this.emitValue(atOffset(0));
      a.store("u64", R10, nextSlot, R0).load("u32", R0, R10, lengthSlot).store("u64", R10, offsetSlot, R0);
      this.unspill();
      a.jump(loop);
    }
    a.label(done).load("u64", R0, R10, nextSlot);
  }
}

/** Stack slots the protochain loop uses beyond the filter's own registers. */
const protochainSlots = 4;
/** Values shared between tests kept on the stack, below the filter registers. */
const maximumCachedValues = 16;
const stackSize = 512;

/** Packet-derived values of a test that may be reused (no registers: those change between tests). */
function cacheableKeys(test: DecisionTest): Set<string> {
  const keys = new Set<string>();
  const visit = (value: Value): boolean => {
    switch (value.kind) {
      case "load": {
        const pure = visit(value.offset);
        if (pure) keys.add(formatValue(value));
        return pure;
      }
      case "binary": {
        const left = visit(value.left);
        const right = visit(value.right);
        const pure = left && right;
        if (pure && (value.left.kind !== "constant" || value.right.kind !== "constant")) keys.add(formatValue(value));
        return pure;
      }
      case "register":
      case "packetType":
        return false;
      default:
        return true;
    }
  };
  if (test.kind === "compare") {
    visit(test.left);
    visit(test.right);
  }
  return keys;
}

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

