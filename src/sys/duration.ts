/**
 * The duration notation netbpf reads everywhere (options, rule files):
 * `500ms`, `2s`, `5m`, `1h`, `30d`; a bare number is in a default unit.
 * Pure; the CLI's option parser (cli/duration-option.ts) and the audit alert
 * rules both use it.
 */

export const durationUnits: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export type DurationUnit = "ms" | "s" | "m" | "h" | "d";

/**
 * Milliseconds for a duration text, or a string saying what is wrong with it
 * (the caller wraps it in its own error, naming the option or file line).
 */
export function durationMilliseconds(text: string, bareUnit: DurationUnit = "s"): number | string {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(String(text).trim());
  if (!match) return `"${text}" is not a duration`;
  const milliseconds = Number(match[1]) * durationUnits[match[2] ?? bareUnit]!;
  if (!Number.isFinite(milliseconds) || milliseconds <= 0) return `"${text}" must be longer than zero`;
  return Math.round(milliseconds);
}

/** What to write instead of a bad duration. */
export const durationHint = "write e.g. 500ms, 2s, 5m, 1h or 30d";
