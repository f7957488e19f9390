/** Rendering shared by commands: aligned tables for people, JSON lines for machines. */

export function renderTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? "").length)));
  return cells
    .map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join("  ").trimEnd())
    .join("\n");
}

const largestSafe = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * JSON that keeps 64-bit integers exact: a bigint within ±(2^53 − 1) becomes a
 * number, any other a decimal string (as a JSON number it would lose digits).
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === "bigint" ? (v <= largestSafe && v >= -largestSafe ? Number(v) : v.toString()) : v));
}

export function writeLine(text: string): void {
  process.stdout.write(text + "\n");
}
