/** Durations given on the command line: `500ms`, `2s`, `5m`, `1h`, `30d`; a bare number is in `bareUnit`. */
import { UsageError } from "../sys/errors.js";

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(text: string, option: string, bareUnit: keyof typeof units = "s"): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(String(text).trim());
  if (!match) throw new UsageError(`option ${option}`, `"${text}" is not a duration`, "write e.g. 500ms, 2s, 5m, 1h or 30d");
  const milliseconds = Number(match[1]) * units[match[2] ?? bareUnit]!;
  if (!Number.isFinite(milliseconds) || milliseconds <= 0) throw new UsageError(`option ${option}`, `"${text}" must be longer than zero`);
  return Math.round(milliseconds);
}
