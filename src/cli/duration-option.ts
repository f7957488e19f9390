/** Durations given on the command line: `500ms`, `2s`, `5m`, `1h`, `30d`; a bare number is in `bareUnit`. */
import { durationHint, durationMilliseconds, type DurationUnit } from "../sys/duration.js";
import { UsageError } from "../sys/errors.js";

export function parseDuration(text: string, option: string, bareUnit: DurationUnit = "s"): number {
  const result = durationMilliseconds(text, bareUnit);
  if (typeof result === "string") throw new UsageError(`option ${option}`, result, result.endsWith("zero") ? undefined : durationHint);
  return result;
}
