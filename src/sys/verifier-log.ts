/**
 * Reading the kernel verifier's log: each line classified (instruction,
 * source comment, register state, message), the failing instruction and the
 * verifier's message. VerifierError (errors.ts) puts the summary in its
 * message; VerifierReport (core) builds its explanation on the parsed entries.
 */
import { argumentError, expectString } from "./argument-checks.js";

/** A C source line, from BTF line info or from the `; … @ file:line` comments the kernel puts in the log. */
export interface SourceLine {
  /** Undefined only for logs of kernels before 6.6, whose comments carry the text alone. */
  fileName: string | undefined;
  lineNumber: number | undefined;
  /** Column, when known from line info (the log does not print it). */
  column?: number;
  /** The text of the line, without leading and trailing white space. */
  text: string;
}

const instructionLinePattern = /^(\d+): \(([0-9a-f]{2})\) (.*)$/;
const sourceCommentPattern = /^; (.*?) @ (\S+):(\d+)$/;
const stateSnapshotPattern = /^(\d+): ((?:frame\d+: )?R\d+.*)$/;
const indentedStatePattern = /^\s+((?:frame\d+: )?R\d+=.*)$/;
const fromToPattern = /^from (\d+) to (\d+): (.*)$/;
const branchStatePattern = /^(.*\bgoto pc[+-]\d+) (\d+): (R\d+.*)$/;
export const bookkeepingPattern = /^(from \d+ to \d+|\d+: safe$|\s+R\d+=|\s+frame\d+: |Live regs|\s+\d+: [.0-9]{10} |processed \d+ insns|verification time|stack depth \d|max_states_per_insn|Validating|Func#|func#|mark_precise|last_idx|regs=|parent didn't|frame\d+: |caller:|callee:|propagating|cur state:|old state:|\s*$)/;

export interface LogEntry {
  /** Position in the log's lines. */
  index: number;
  kind: "instruction" | "source" | "state" | "other";
  instruction?: number;
  /** Slots the instruction takes (2 for a 64-bit immediate load). */
  width?: number;
  text?: string;
  stateText?: string;
  stateIsFull?: boolean;
  /** An error message the kernel printed on the same line, right after a jump instruction. */
  trailing?: string;
  source?: SourceLine;
}

export function parseLogLine(line: string, index: number): LogEntry {
  const source = sourceCommentPattern.exec(line);
  if (source) return { index, kind: "source", source: { fileName: source[2]!, lineNumber: Number(source[3]), text: source[1]!.trim() } };
  const standaloneState = /^; ((?:frame\d+: )?R\d+\w*=.*)$/.exec(line);
  if (standaloneState) return { index, kind: "state", stateText: standaloneState[1], stateIsFull: false };
  // Older kernels print the source text alone.
  const bareSource = /^; (.*\S.*)$/.exec(line);
  if (bareSource) return { index, kind: "source", source: { fileName: undefined, lineNumber: undefined, text: bareSource[1]!.trim() } };
  const instruction = instructionLinePattern.exec(line);
  if (instruction) {
    const rest = instruction[3]!;
    const annotation = /\s+; (.*)$/.exec(rest);
    let text = annotation ? rest.slice(0, annotation.index) : rest;
    const branch = branchStatePattern.exec(text);
    if (branch) {
      // `if r7 < r6 goto pc-2 2: R1=… R10=fp0`: the full state at the jump target.
      return { index, kind: "instruction", instruction: Number(instruction[1]), width: 1, text: branch[1]!.trim(), stateText: branch[3], stateIsFull: true };
    }
    const jumpWithMessage = /^(.*\bgoto pc[+-]\d+) (\S.*)$/.exec(text);
    if (jumpWithMessage) {
      return { index, kind: "instruction", instruction: Number(instruction[1]), width: 1, text: jumpWithMessage[1]!.trim(), trailing: jumpWithMessage[2]!.trim() };
    }
    text = text.trim();
    const width = instruction[2] === "18" ? 2 : 1;
    return { index, kind: "instruction", instruction: Number(instruction[1]), width, text, stateText: annotation?.[1], stateIsFull: false };
  }
  // `5: R0=…` may be a full state or only the registers that changed, depending on the log level.
  const snapshot = stateSnapshotPattern.exec(line);
  if (snapshot) return { index, kind: "state", instruction: Number(snapshot[1]), stateText: snapshot[2], stateIsFull: false };
  // The caller's and the callee's state at a call, the caller's at a return.
  const indented = indentedStatePattern.exec(line);
  if (indented) return { index, kind: "state", stateText: indented[1], stateIsFull: true };
  const fromTo = fromToPattern.exec(line);
  if (fromTo && /^R\d/.test(fromTo[3]!)) return { index, kind: "state", instruction: Number(fromTo[2]), stateText: fromTo[3], stateIsFull: true };
  return { index, kind: "other", text: line };
}

/**
 * Splits printed state (`R1=ctx() R6=scalar(smin=0,var_off=(0x0; 0xff)) fp-8=mmmm???? refs=2`)
 * into entries; values may contain spaces inside parentheses.
 */
export function parseRegisterState(text: string): Record<string, string> {
  expectString("parse register state", "text", text);
  const values: Record<string, string> = {};
  const tokens: string[] = [];
  let depth = 0;
  let current = "";
  for (const character of text) {
    if (character === "(") depth++;
    else if (character === ")") depth = Math.max(0, depth - 1);
    if (character === " " && depth === 0) {
      if (current) tokens.push(current);
      current = "";
    } else current += character;
  }
  if (current) tokens.push(current);
  for (const token of tokens) {
    const match = /^(R\d+|fp-?\d+|refs)(?:_[a-zA-Z]+)?=(.*)$/.exec(token);
    if (match) values[match[1]!] = match[2]!;
  }
  return values;
}

/** A verifier log split into lines and classified, with the failing instruction and the message found. */
export interface VerifierLog {
  readonly lines: readonly string[];
  readonly entries: readonly LogEntry[];
  /** Position in `entries` of the last instruction line (the failing one), or -1. */
  readonly lastInstruction: number;
  /** The verifier's message: the text after the last instruction line, minus bookkeeping and state. */
  readonly messageLines: readonly string[];
  /** Index (8-byte slot) of the failing instruction, when the log names one. */
  readonly instruction: number | undefined;
  /** The failing instruction as the verifier printed it. */
  readonly instructionText: string | undefined;
}

export function parseVerifierLog(log: string): VerifierLog {
  const lines = log.split("\n").map((line) => line.trimEnd());
  const entries = lines.map(parseLogLine);
  let lastInstruction = -1;
  for (let i = entries.length - 1; i >= 0; i--) {
    if (entries[i]!.kind === "instruction") {
      lastInstruction = i;
      break;
    }
  }
  const messageLines: string[] = [];
  const trailing = lastInstruction >= 0 ? entries[lastInstruction]!.trailing : undefined;
  if (trailing) messageLines.push(trailing);
  for (let i = lastInstruction + 1; i < entries.length; i++) {
    const entry = entries[i]!;
    if (entry.kind !== "other" || bookkeepingPattern.test(lines[i]!)) continue;
    messageLines.push(lines[i]!.trim());
  }
  if (messageLines.length === 0) {
    // No message after the last instruction (a truncated log, or an error printed earlier): take the last meaningful line.
    for (let i = entries.length - 1; i >= 0; i--) {
      if (entries[i]!.kind === "other" && !bookkeepingPattern.test(lines[i]!)) {
        messageLines.push(lines[i]!.trim());
        break;
      }
    }
  }
  const failing = lastInstruction >= 0 ? entries[lastInstruction]! : undefined;
  return { lines, entries, lastInstruction, messageLines, instruction: failing?.instruction, instructionText: failing?.text };
}

/** What the verifier's log says went wrong, in one line, and where. */
export interface VerifierSummary {
  /** Index of the failing instruction, when the log names one. */
  instruction: number | undefined;
  /** The failing instruction as the verifier printed it. */
  instructionText: string | undefined;
  /** The verifier's own message (its last line). */
  message: string;
}

export function summarizeVerifierLog(log: string | VerifierLog): VerifierSummary {
  if (typeof log !== "string" && !(typeof log === "object" && log !== null && Array.isArray(log.messageLines))) {
    throw argumentError("summarize verifier log", "log", "the verifier's log (a string) or a parsed log (from parseVerifierLog)", log);
  }
  const parsed = typeof log === "string" ? parseVerifierLog(log) : log;
  return { instruction: parsed.instruction, instructionText: parsed.instructionText, message: parsed.messageLines.at(-1) ?? "the program was rejected" };
}
