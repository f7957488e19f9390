import { VerifierError } from "../sys/errors.js";
import { expectArray, expectInstance, expectObject, expectString } from "../sys/argument-checks.js";
import { parseRegisterState, parseVerifierLog, type LogEntry, type SourceLine } from "../sys/verifier-log.js";

/** What kind of mistake the verifier found, as a stable identifier. */
export type VerifierFailureCategory =
  | "packet-bounds"
  | "null-pointer"
  | "not-a-pointer"
  | "unbounded-loop"
  | "too-many-instructions"
  | "stack-access"
  | "uninitialized-register"
  | "helper-not-allowed"
  | "context-access"
  | "return-value"
  | "argument-type"
  | "misaligned"
  | "pointer-arithmetic"
  | "unreleased-reference"
  | "unknown";


/**
 * A BTF line_info record. Either `slot` (instruction index in the loaded
 * program, as CollectionProgramSpec.lineInfo has it) or `instructionOffset`
 * (bytes, as BTF.ext stores it) places it.
 */
export interface LineInfoRecord {
  slot?: number;
  instructionOffset?: number;
  fileName: string;
  lineNumber: number;
  column?: number;
  line: string;
}

export interface VerifierReportOptions {
  /** Line info of the program as loaded; used before the log's own source comments. */
  lineInfo?: readonly LineInfoRecord[];
}

/** The registers (and stack slots) as the verifier last printed them before the failing instruction. */
export interface RegisterState {
  /** The instruction the state belongs to, when the log says. */
  instruction: number | undefined;
  /** The call frame the registers belong to: 0 for the main program, 1 for a function it calls, … */
  frame: number;
  /** The last log text that printed register state, as printed. */
  line: string;
  /** Register or stack slot → value, merged from the last full state and the changes printed after it: `{ R1: "ctx()", "fp-8": "mmmm????" }`. */
  values: Record<string, string>;
}

/** Another instruction that matters for the failure (e.g. where a leaked reference was acquired). */
export interface RelatedInstruction {
  role: string;
  instruction: number;
  instructionText: string | undefined;
  source: SourceLine | undefined;
}

interface Rule {
  category: VerifierFailureCategory;
  pattern: RegExp;
  title: string;
  explanation: (match: RegExpExecArray, context: RuleContext) => string;
  advice: string;
  /** The message is about the whole program, found after its paths were checked: no instruction is at fault. */
  wholeProgram?: boolean;
}

interface RuleContext {
  instructionText: string | undefined;
  messageText: string;
}

const registerName = (match: RegExpExecArray, group = 1): string => (match[group] ? `R${match[group]}` : "the register");

/** Ordered: the first rule whose pattern matches the verifier's message wins. */
const rules: Rule[] = [
  {
    category: "unreleased-reference",
    pattern: /Unreleased reference id=(\d+) alloc_insn=(\d+)|would lead to reference leak|Unreleased reference/,
    title: "a reference is never released",
    explanation: (match) =>
      `The program acquired something that must be given back${match[2] ? ` (at instruction ${match[2]})` : ""} — a ring buffer reservation from bpf_ringbuf_reserve, a socket from bpf_sk_lookup_*, a lock or a kernel object reference — and there is a path to exit on which it is neither submitted, discarded nor released.`,
    advice:
      "On every path after the acquiring call, release it exactly once: bpf_ringbuf_submit() or bpf_ringbuf_discard() for a reservation, bpf_sk_release() for a socket, bpf_spin_unlock() for a lock. Look at the branch that reaches the exit shown above.",
  },
  {
    category: "packet-bounds",
    pattern: /invalid access to packet|R(\d+) offset is outside of the packet|invalid (?:variable-offset )?access to packet|R(\d+) invalid mem access 'pkt/,
    title: "packet access without a bounds check",
    explanation: (_match, context) => {
      const access = /off=(-?\d+) size=(\d+), R(\d+)\(id=\d+,off=-?\d+,r=(\d+)\)/.exec(context.messageText);
      const specific = access
        ? ` Here R${access[3]} reaches ${access[2] === "1" ? `byte ${access[1]}` : `bytes ${access[1]}–${Number(access[1]) + Number(access[2]) - 1}`} of the packet, but only the first ${access[4]} bytes were checked against data_end.`
        : "";
      return `The program reads or writes packet memory that the verifier cannot prove lies before data_end. Every packet access needs an earlier comparison with data_end that covers the whole access (offset plus size), on every path to it.${specific}`;
    },
    advice:
      "Before the access, check `if (data + offset + size > data_end) return …;` and access through the checked pointer. An offset computed from packet contents must be bounded (e.g. `off &= 0xff`) and checked again after it is added.",
  },
  {
    category: "null-pointer",
    pattern: /R(\d+) invalid mem access '(\w*or_null\w*)'|R(\d+) type=(\w*or_null\w*) expected=/,
    title: "possible NULL pointer dereference",
    explanation: (match) =>
      `${registerName(match, match[1] ? 1 : 3)} holds a pointer that may be NULL (${match[2] ?? match[4]}): it comes from a call that can fail — bpf_map_lookup_elem, bpf_ringbuf_reserve, bpf_sk_lookup_* — and is used without checking it.`,
    advice:
      "Check the result before using it: `value = bpf_map_lookup_elem(&map, &key); if (!value) return 0;`. The check must come before any use, on the pointer itself (not on a copy made after arithmetic).",
  },
  {
    category: "not-a-pointer",
    pattern: /R(\d+) invalid mem access '(scalar|inv)'/,
    title: "a number is used as a pointer",
    explanation: (match) =>
      `${registerName(match)} holds a plain number (a scalar) as far as the verifier knows, so it cannot be dereferenced. Typical causes: a pointer read back from memory that the verifier does not track as a pointer, an integer cast to a pointer, or a register reused after a helper call overwrote it.`,
    advice:
      "Dereference only pointers the verifier knows: the context, packet pointers from ctx->data, map values from lookups, the stack. Read arbitrary kernel memory with bpf_probe_read_kernel(). Keep pointers in R6–R9 across calls and spill them with 8-byte stores.",
  },
  {
    category: "unbounded-loop",
    pattern: /infinite loop detected at insn (\d+)|back-edge from insn (\d+) to (\d+)|unbounded loop|loop is not bounded/,
    title: "a loop the verifier cannot prove ends",
    explanation: (match) =>
      match[2]
        ? `There is a jump backwards (from instruction ${match[2]} to ${match[3]}): loops are not allowed for this program (an unprivileged program, or a kernel older than 5.3).`
        : "The verifier reached the same loop head with exactly the same state again, so nothing in the loop makes progress towards its exit as far as it can tell.",
    advice:
      "Give the loop a counter with a constant bound (`for (int i = 0; i < 64 && i < n; i++)`), use bpf_loop() or the bpf_for() iterator for data-dependent counts, or unroll a small fixed loop with `#pragma unroll`.",
  },
  {
    category: "too-many-instructions",
    pattern: /BPF program is too large|The sequence of (\d+) jumps is too complex|too many states|complexity limit/,
    title: "the program is too complex to verify",
    explanation: (match) =>
      match[1]
        ? `The verifier keeps every branch it has not yet explored; here ${match[1]} were pending at once, more than its limit of 8192. Many conditional jumps on values it cannot tell apart multiply the paths.`
        : "The verifier explores every path through the program and gives up after processing 1 000 000 instructions. Many branches on values it cannot tell apart (each one can double the paths), long unrolled loops and large inlined functions use up that budget.",
    advice:
      "Reduce branching on unknown values, move repeated code into a global (non-static) function, which is verified once, replace long or unrolled loops with bpf_loop(), and load with logLevel 2 to see where the paths multiply.",
  },
  {
    category: "stack-access",
    pattern: /combined stack size of (\d+) calls is (\d+)|stack depth (\d+) exceeds|stack limit|tail_calls are not allowed when call stack of previous frames is \d+ bytes/,
    title: "the stack is too large",
    wholeProgram: true,
    explanation: (match) =>
      `Each program may use at most 512 bytes of stack, counting every frame in the deepest call chain${match[2] ? ` (here ${match[1]} frames need ${match[2]} bytes)` : ""}; with tail calls each frame may use 256 bytes.`,
    advice:
      "Move big buffers and structs off the stack into a one-entry per-CPU array map and use its value as scratch space, or shrink the frames of the functions on the deepest call chain.",
  },
  {
    category: "stack-access",
    pattern: /invalid (?:indirect |variable-offset )?(?:read|write|access) (?:from|to|of) stack|invalid (?:indirect )?access to stack|invalid stack off=|invalid (?:zero-sized )?read from stack|invalid size of register (?:spill|fill)|stack frame .* is invalid/,
    title: "invalid stack access",
    explanation: () =>
      "The stack is the 512 bytes below R10 (the frame pointer). This access falls outside it, or reads stack bytes that were never written — helper arguments passed by pointer (a map key, a buffer) count as reads of the whole size.",
    advice:
      "Keep stack offsets between -512 and -1 from R10, initialise variables before use (`struct key k = {};` or __builtin_memset, padding included), and give helpers a pointer to a fully written buffer of the size you pass.",
  },
  {
    category: "return-value",
    pattern: /At program exit the register R0 has (.*) should have been in (.*)|At program exit the register R0 is not a known value|R0 leaks addr as return value/,
    title: "the return value is out of range",
    explanation: (match) =>
      match[2]
        ? `This program type may only return values in ${match[2]}; on some path R0 holds ${match[1]!.trim()}.`
        : "This program type requires a known, allowed return value in R0 at exit.",
    advice:
      "Return one of the values the hook defines (cgroup skb: 1 to allow, 0 to drop; XDP: XDP_PASS, XDP_DROP, …; tc: TC_ACT_OK, TC_ACT_SHOT, …), and clamp computed values before returning them.",
  },
  {
    category: "uninitialized-register",
    pattern: /R(\d+) !read_ok/,
    title: "a register is read before it is written",
    explanation: (match, context) =>
      match[1] === "0" && context.instructionText === "exit"
        ? "The program exits without setting R0, the return value, on this path."
        : `R${match[1]} is read but nothing has written it on this path. At program start only R1 (the context) and R10 (the frame pointer) are set; every helper or function call clobbers R1–R5.`,
    advice:
      "Set the register before reading it. Keep values that must survive a call in R6–R9, which calls preserve, and set R0 on every path that reaches exit.",
  },
  {
    category: "helper-not-allowed",
    pattern: /cannot call GPL-restricted function from non-GPL compatible program/,
    title: "GPL-only helper in a program without a GPL-compatible licence",
    explanation: () => "This helper is exported to GPL-compatible programs only, and the program's licence is not one of them.",
    advice: "Declare a GPL-compatible licence — `char LICENSE[] SEC(\"license\") = \"GPL\";` in C, `license: \"GPL\"` in a ProgramSpec — or use another helper.",
  },
  {
    category: "helper-not-allowed",
    pattern: /program of this type cannot use helper (\S+)|unknown func (\S+)|invalid func (\S+)|helper call is not allowed in probe|helper call might sleep in a non-sleepable prog|calling kernel function (\S+) is not allowed|kernel function (\S+) (?:is not allowed|args)|function calls are not allowed|cannot call (\S+)/,
    title: "helper not available here",
    explanation: (match) => {
      const helper = match.slice(1).find((group) => group !== undefined);
      if (match[3]?.startsWith("unknown#")) return `The kernel has no helper with id ${match[3].slice("unknown#".length)}: it is older than the helper, or the id is wrong.`;
      return `Each program type may call its own set of helpers${helper ? `, and ${helper} is not among them for this program type` : "; this call is not one of them"} (or it needs a sleepable program, or this kernel lacks it).`;
    },
    advice:
      "Use a program type that offers the helper (bpf_redirect needs tc or XDP, not a socket filter), or an equivalent helper available here; `netbpf features` lists which helpers each program type may call on this kernel.",
  },
  {
    category: "context-access",
    pattern: /invalid bpf_context access|invalid access to context|R(\d+) invalid mem access 'ctx'|dereference of modified ctx ptr|cannot write into ctx|invalid ctx access/,
    title: "invalid context access",
    explanation: () =>
      "The program accesses its context (struct __sk_buff, struct xdp_md, the tracepoint record, …) at an offset or with a size this program type does not allow, writes a read-only field, or goes through a context pointer that was moved.",
    advice:
      "Use the fields of the context struct with their declared size (take the struct from the kernel headers or vmlinux.h, not raw offsets); only some fields are writable; for tracepoints read the layout from the event's format; do not add offsets to the ctx pointer before dereferencing it.",
  },
  {
    category: "argument-type",
    pattern: /R(\d+) type=(\w+) expected=([^\n]+)|arg#?(\d+) (?:expected|reference type|pointer type)[^\n]*|invalid argument type|R(\d+) is not a (?:pointer|scalar)|Possibly NULL pointer passed to (?:trusted|helper) arg(\d+)/,
    title: "wrong argument type for a call",
    explanation: (match) =>
      match[1]
        ? `Argument R${match[1]} of the call has type ${match[2]}, but the helper expects ${match[3]!.replace(/, /g, " or ")}.`
        : "An argument of the call does not have the type the helper or kernel function expects.",
    advice:
      "Pass each argument in the right register (R1 first, … R5) with the type the helper wants: a map from `&map` (loaded with lddw), a pointer to initialised stack or map memory for keys and values, a constant or bounded size for lengths.",
  },
  {
    category: "misaligned",
    pattern: /misaligned (?:packet |stack |value |context |pointer )?access|misaligned/,
    title: "misaligned access",
    explanation: () =>
      "The access is not aligned to its size. With strict alignment (BPF_F_STRICT_ALIGNMENT, and always on architectures without efficient unaligned access) a 4-byte access needs an address that is a multiple of 4; packet data usually starts 2 bytes into a word (NET_IP_ALIGN).",
    advice:
      "Load smaller pieces and combine them, copy the bytes into an aligned stack variable with __builtin_memcpy, or use bpf_skb_load_bytes(); stack accesses must use offsets that are multiples of their size.",
  },
  {
    category: "pointer-arithmetic",
    pattern: /pointer arithmetic[^\n]*prohibited|bitwise operator \S+ on pointer prohibited|math between [^\n]* pointer and [^\n]* is not allowed|pointer comparison prohibited|R(\d+) pointer -= pointer prohibited|R(\d+) leaks addr|R(\d+) 32-bit pointer arithmetic prohibited|only pointer arithmetic/,
    title: "forbidden pointer arithmetic",
    explanation: () =>
      "Only adding or subtracting a bounded number is allowed, and only on some pointers (packet, stack, map value). Multiplying, masking or shifting pointers, 32-bit arithmetic on them, arithmetic on context, map or socket pointers, and leaking pointer values as numbers are all refused.",
    advice:
      "Compute offsets as numbers first, bound them, then add the result to the pointer once. Use the pointer types meant for it (ctx->data for packets, a map value for scratch memory), and never store a pointer where a number is expected.",
  },
];

const fallback = {
  title: "the program was rejected",
  explanation: "netbpf has no plain-language explanation for this message yet; the verifier's own words and the instruction are above.",
  advice: "Read the log around the failing instruction (error.log), or load with logLevel 2 for the register state at every instruction.",
};

function sortedEntries(values: Record<string, string>): [string, string][] {
  const rank = (key: string): number => (key.startsWith("R") ? Number(key.slice(1)) : key.startsWith("fp") ? 100 - Number(key.slice(2)) : 10000);
  return Object.entries(values).sort((a, b) => rank(a[0]) - rank(b[0]));
}

/**
 * A verifier rejection made readable: the failing instruction, the C source
 * line it came from, the registers just before it, the verifier's message,
 * and what the message means and what to do about it.
 */
export class VerifierReport {
  readonly category: VerifierFailureCategory;
  /** A short plain-language name of the problem. */
  readonly title: string;
  /** What the verifier's message means. */
  readonly explanation: string;
  /** What to change. */
  readonly advice: string;
  /** The verifier's own message (its first line). */
  readonly message: string;
  /** Every line of the verifier's message, including detail lines like `invalid access to packet, off=…`. */
  readonly messageLines: readonly string[];
  /** Index (8-byte slot) of the failing instruction, when the log names one. */
  readonly instruction: number | undefined;
  /** The failing instruction as the verifier printed it. */
  readonly instructionText: string | undefined;
  readonly source: SourceLine | undefined;
  readonly registers: RegisterState | undefined;
  readonly related: readonly RelatedInstruction[];
  /** For loops: the instruction range the log kept repeating, when it shows one. */
  readonly loop: { first: number; last: number } | undefined;

  private constructor(fields: Omit<VerifierReport, "format" | "toJSON">) {
    // Not for users: VerifierReport.fromError and fromLog build reports.
    expectObject("construct VerifierReport", "fields", fields);
    expectString("construct VerifierReport", "fields.message", fields.message);
    this.category = fields.category;
    this.title = fields.title;
    this.explanation = fields.explanation;
    this.advice = fields.advice;
    this.message = fields.message;
    this.messageLines = fields.messageLines;
    this.instruction = fields.instruction;
    this.instructionText = fields.instructionText;
    this.source = fields.source;
    this.registers = fields.registers;
    this.related = fields.related;
    this.loop = fields.loop;
  }

  /** Builds the report of a VerifierError from its log. */
  static fromError(error: VerifierError, options: VerifierReportOptions = {}): VerifierReport {
    expectInstance("verifier report", "error", error, VerifierError, "a VerifierError (thrown by Program.load)");
    return VerifierReport.fromLog(error.log, options);
  }

  /** Builds a report from a verifier log (any log level). */
  static fromLog(log: string, options: VerifierReportOptions = {}): VerifierReport {
    expectString("verifier report", "log", log);
    expectObject("verifier report", "options", options);
    if (options.lineInfo !== undefined) expectArray("verifier report", "options.lineInfo", options.lineInfo);
    const { lines, entries, lastInstruction, messageLines, instruction, instructionText } = parseVerifierLog(log);
    const messageText = messageLines.join("\n");

    // Registers: the last full state before the failing instruction, updated by the changes printed after it.
    let registers: RegisterState | undefined;
    const stopAt = lastInstruction >= 0 ? lastInstruction : entries.length;
    let start = 0;
    for (let i = stopAt - 1; i >= 0; i--) {
      if (entries[i]!.stateIsFull) {
        start = i;
        break;
      }
    }
    let values: Record<string, string> = {};
    let lastStateLine: string | undefined;
    let lastStateInstruction: number | undefined;
    let frame = 0;
    for (let i = start; i < stopAt; i++) {
      const entry = entries[i]!;
      // A call leaves R1–R5 unreadable and sets R0 (which its annotation shows).
      if (entry.kind === "instruction" && /^call /.test(entry.text ?? "")) for (let register = 0; register <= 5; register++) delete values[`R${register}`];
      if (!entry.stateText) continue;
      const stateFrame = Number(/^frame(\d+): /.exec(entry.stateText)?.[1] ?? 0);
      if (entry.stateIsFull || stateFrame !== frame) values = {};
      frame = stateFrame;
      Object.assign(values, parseRegisterState(entry.stateText));
      lastStateLine = entry.stateText;
      lastStateInstruction = entry.instruction;
    }
    if (lastStateLine !== undefined) registers = { instruction: lastStateInstruction, frame, line: lastStateLine, values };

    const sourceOf = (target: number | undefined, logPosition: number): SourceLine | undefined => {
      if (target === undefined) return undefined;
      const fromLineInfo = sourceFromLineInfo(options.lineInfo, target);
      if (fromLineInfo) return fromLineInfo;
      // The kernel prints a source comment when the line changes along the path it follows, but not
      // always after a jump: a comment seen across a jump may belong to other code, so stop there.
      let next = target;
      for (let i = logPosition - 1; i >= 0; i--) {
        const entry = entries[i]!;
        if (entry.kind === "source" && entry.source!.lineNumber !== 0 && entry.source!.text !== "") return entry.source;
        if (entry.kind === "instruction") {
          if (entry.instruction! + entry.width! !== next) return undefined;
          next = entry.instruction!;
        }
        if (entry.kind === "other" && /^from \d+ to \d+/.test(lines[i]!)) break;
      }
      return undefined;
    };
    const source = sourceOf(instruction, lastInstruction);

    // Which rule explains it.
    const context: RuleContext = { instructionText, messageText };
    let category: VerifierFailureCategory = "unknown";
    let title = fallback.title;
    let explanation = fallback.explanation;
    let advice = fallback.advice;
    let rule: Rule | undefined;
    let match: RegExpExecArray | null = null;
    for (const candidate of rules) {
      match = candidate.pattern.exec(messageText);
      if (match) {
        rule = candidate;
        break;
      }
    }
    if (rule && match) {
      category = rule.category;
      title = rule.title;
      explanation = rule.explanation(match, context);
      advice = rule.advice;
    }

    // A budget exhausted inside a loop is a loop problem, not a size problem.
    const loop = repeatedRange(entries, stopAt);
    if (category === "too-many-instructions" && loop && /BPF program is too large/.test(messageText)) {
      const loopRule = rules.find((candidate) => candidate.category === "unbounded-loop")!;
      category = "unbounded-loop";
      title = "a loop runs too long for the verifier";
      explanation = `The verifier follows a loop iteration by iteration; the log ends inside the loop at instructions ${loop.first}–${loop.last}, after it used up its budget of 1 000 000 instructions. The loop's bound depends on a value it does not know (a packet length, a map value) or is too large.`;
      advice = loopRule.advice;
    }

    const related: RelatedInstruction[] = [];
    const leak = /alloc_insn=(\d+)/.exec(messageText);
    if (leak) {
      const allocation = Number(leak[1]);
      let position = -1;
      for (let i = stopAt; i >= 0; i--) {
        if (entries[i]?.kind === "instruction" && entries[i]!.instruction === allocation) {
          position = i;
          break;
        }
      }
      related.push({
        role: "acquired here",
        instruction: allocation,
        instructionText: position >= 0 ? entries[position]!.text : undefined,
        source: sourceOf(allocation, position >= 0 ? position : 0),
      });
    }

    // A verbose log shows the last path checked before a whole-program error; that path is not at fault.
    const atInstruction = !rule?.wholeProgram;
    return new VerifierReport({
      category,
      title,
      explanation,
      advice,
      message: messageLines[0] ?? "the program was rejected",
      messageLines,
      instruction: atInstruction ? instruction : undefined,
      instructionText: atInstruction ? instructionText : undefined,
      source: atInstruction ? source : undefined,
      registers: atInstruction ? registers : undefined,
      related,
      loop: category === "unbounded-loop" || category === "too-many-instructions" ? loop : undefined,
    });
  }

  /** The report as text for people (what `netbpf load` prints). */
  format(): string {
    const out: string[] = [`The verifier rejected the program: ${this.title}`, ""];
    const field = (name: string, value: string) => {
      const [first, ...rest] = value.split("\n");
      out.push(`  ${`${name}:`.padEnd(15)}${first}`);
      for (const line of rest) out.push(`  ${"".padEnd(15)}${line}`);
    };
    if (this.instruction !== undefined) field("instruction", `${this.instruction}: ${this.instructionText ?? ""}`.trimEnd());
    if (this.source) field("source", sourceText(this.source));
    field("verifier", this.messageLines.length > 0 ? this.messageLines.join("\n") : this.message);
    if (this.registers) {
      const mentioned = new Set([...this.messageLines.join(" ").matchAll(/\bR(\d+)\b/g)].map((match) => `R${match[1]}`));
      const shown = sortedEntries(this.registers.values).map(([name, value]) => `${mentioned.has(name) ? "*" : ""}${name}=${value}`);
      field("registers", `${this.registers.frame > 0 ? `(in a called function: frame ${this.registers.frame})\n` : ""}${shown.join("\n")}`);
    }
    for (const related of this.related) {
      const where = `${related.instruction}${related.instructionText ? `: ${related.instructionText}` : ""}`;
      field(related.role, related.source ? `${where}\n${sourceText(related.source)}` : where);
    }
    if (this.loop) field("loop", this.loop.first === this.loop.last ? `instruction ${this.loop.first}` : `instructions ${this.loop.first}–${this.loop.last}`);
    out.push("", ...wrap(`What it means: ${this.explanation}`), "", ...wrap(`What to do: ${this.advice}`));
    return out.join("\n");
  }

  toJSON(): Record<string, unknown> {
    return {
      category: this.category,
      title: this.title,
      explanation: this.explanation,
      advice: this.advice,
      message: this.message,
      messageLines: this.messageLines,
      instruction: this.instruction,
      instructionText: this.instructionText,
      source: this.source,
      registers: this.registers,
      related: this.related,
      loop: this.loop,
    };
  }
}

declare module "../sys/errors.js" {
  interface VerifierError {
    /** The readable report of this rejection (see VerifierReport); pass line info for exact source lines. */
    report(options?: VerifierReportOptions): VerifierReport;
    /** Line info of the rejected program, when the loader knew it (Collection sets it); report() uses it by default. */
    lineInfo?: readonly LineInfoRecord[];
  }
}

// errors.ts (sys layer) cannot import core: the report is attached from here, where it is defined.
Object.defineProperty(VerifierError.prototype, "report", {
  value: function report(this: VerifierError, options: VerifierReportOptions = {}): VerifierReport {
    return VerifierReport.fromError(this, { lineInfo: this.lineInfo, ...options });
  },
  writable: true,
  configurable: true,
});

/** The report of a VerifierError (see VerifierReport). */
export function verifierReport(error: VerifierError, options: VerifierReportOptions = {}): VerifierReport {
  expectInstance("verifier report", "error", error, VerifierError, "a VerifierError (thrown by Program.load)");
  expectObject("verifier report", "options", options);
  return VerifierReport.fromError(error, { lineInfo: error.lineInfo, ...options });
}

/** The readable report of a VerifierError, or undefined for any other error. */
export function formatVerifierError(error: unknown, options: VerifierReportOptions = {}): string | undefined {
  expectObject("format verifier error", "options", options);
  return error instanceof VerifierError ? VerifierReport.fromError(error, { lineInfo: error.lineInfo, ...options }).format() : undefined;
}

function sourceText(source: SourceLine): string {
  return source.fileName !== undefined && source.lineNumber !== undefined ? `${source.fileName}:${source.lineNumber}: ${source.text}` : source.text;
}

function sourceFromLineInfo(records: readonly LineInfoRecord[] | undefined, instruction: number): SourceLine | undefined {
  if (!records?.length) return undefined;
  let best: LineInfoRecord | undefined;
  let bestSlot = -1;
  for (const record of records) {
    const slot = record.slot ?? (record.instructionOffset !== undefined ? record.instructionOffset / 8 : undefined);
    if (slot === undefined || slot > instruction || record.lineNumber <= 0) continue;
    if (slot >= bestSlot) {
      best = record;
      bestSlot = slot;
    }
  }
  if (!best) return undefined;
  // clang records "./file.c" when built with -fdebug-compilation-dir=.; the kernel's log prints "file.c".
  return { fileName: best.fileName.replace(/^\.\//, ""), lineNumber: best.lineNumber, ...(best.column ? { column: best.column } : {}), text: best.line.trim() };
}

/** The instruction range the end of the log keeps coming back to, if it loops. */
function repeatedRange(entries: readonly LogEntry[], end: number): { first: number; last: number } | undefined {
  const counts = new Map<number, number>();
  let seen = 0;
  let backwardJump = false;
  for (let i = end; i >= 0 && seen < 200; i--) {
    const entry = entries[i];
    if (entry?.kind !== "instruction") continue;
    seen++;
    counts.set(entry.instruction!, (counts.get(entry.instruction!) ?? 0) + 1);
    if (/\bgotol? pc-\d+/.test(entry.text ?? "")) backwardJump = true;
  }
  // Paths of a branchy program also revisit instructions; only a backward jump makes it a loop.
  const repeated = [...counts].filter(([, count]) => count >= 3).map(([instruction]) => instruction);
  if (repeated.length === 0 || !backwardJump) return undefined;
  return { first: Math.min(...repeated), last: Math.max(...repeated) };
}

function wrap(text: string, width = 78): string[] {
  const lines: string[] = [];
  let current = "";
  for (const word of text.split(" ")) {
    if (current && current.length + 1 + word.length > width) {
      lines.push(current);
      current = `  ${word}`;
    } else current = current ? `${current} ${word}` : word;
  }
  if (current) lines.push(current);
  return lines;
}
