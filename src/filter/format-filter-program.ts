import { disassembleInstruction } from "../asm/disassembler.js";
import { slotIndexes } from "../asm/instruction.js";
import { argumentError, expectObject } from "../sys/argument-checks.js";
import type { GeneratedFilter } from "./generate-filter-program.js";

/**
 * Renders a generated filter as annotated assembly (netbpf's `tcpdump -d`):
 * one numbered line per instruction, a comment with each test before its
 * code, and jump targets named by their label.
 */
export function formatFilterProgram(program: GeneratedFilter): string {
  const checked = expectObject<GeneratedFilter>("format filter program", "program", program);
  if (!Array.isArray(checked.instructions) || !(checked.labels instanceof Map) || !(checked.annotations instanceof Map)) {
    throw argumentError("format filter program", "program", "a generated filter (from generateFilterProgram())", program);
  }
  const slots = slotIndexes(program.instructions);
  const labelAt = new Map<number, string>();
  for (const [name, index] of program.labels) if (!labelAt.has(index)) labelAt.set(index, name);
  const slotNames = new Map<number, string>();
  for (const [index, name] of labelAt) slotNames.set(slots[index]!, name);
  const lines: string[] = [];
  const width = String(slots[program.instructions.length]! - 1).length;
  program.instructions.forEach((instruction, index) => {
    const label = labelAt.get(index);
    const annotation = program.annotations.get(index);
    if (label !== undefined) lines.push(`${label}:${annotation !== undefined ? `\t; ${annotation}` : ""}`);
    else if (annotation !== undefined) lines.push(`\t; ${annotation}`);
    const slot = slots[index]!;
    let text = disassembleInstruction(instruction, { slot, immediates: "hex" });
    const jump = /goto ([+-]0x[0-9a-f]+|[+-]\d+)/.exec(text);
    if (jump) {
      const target = slot + 1 + Number(jump[1]!.replace(/^([+-])0x/, "$10x").replace("+", ""));
      const name = slotNames.get(target);
      if (name !== undefined) text = text.replace(jump[0], `goto ${name}`);
    }
    lines.push(`(${String(slot).padStart(width, "0")}) ${text}`);
  });
  return lines.join("\n");
}
