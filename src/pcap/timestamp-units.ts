import { UsageError } from "../sys/errors.js";
import type { TimestampResolution } from "./capture-record.js";

/** Converts a count of interface time units (plus if_tsoffset seconds) to nanoseconds. */
export function unitsToNanoseconds(units: bigint, resolution: TimestampResolution, offsetSeconds = 0n): bigint {
  const exponent = BigInt(resolution.exponent);
  let nanoseconds: bigint;
  if (resolution.base === 2) nanoseconds = (units * 1_000_000_000n) >> exponent;
  else if (exponent <= 9n) nanoseconds = units * 10n ** (9n - exponent);
  else nanoseconds = units / 10n ** (exponent - 9n);
  return nanoseconds + offsetSeconds * 1_000_000_000n;
}

/** Inverse of unitsToNanoseconds, rounding down to the unit. */
export function nanosecondsToUnits(nanoseconds: bigint, resolution: TimestampResolution, offsetSeconds = 0n): bigint {
  const relative = nanoseconds - offsetSeconds * 1_000_000_000n;
  const exponent = BigInt(resolution.exponent);
  if (resolution.base === 2) return (relative << exponent) / 1_000_000_000n;
  if (exponent <= 9n) return relative / 10n ** (9n - exponent);
  return relative * 10n ** (exponent - 9n);
}

/** The if_tsresol byte: exponent, with the top bit set for powers of two. */
export function resolutionFromByte(value: number): TimestampResolution {
  return value & 0x80 ? { base: 2, exponent: value & 0x7f } : { base: 10, exponent: value };
}

export function resolutionToByte(resolution: TimestampResolution): number {
  if (!Number.isInteger(resolution.exponent) || resolution.exponent < 0 || resolution.exponent > 127) {
    throw new UsageError("write pcapng", `timestamp resolution exponent ${resolution.exponent} is outside 0…127`);
  }
  if (resolution.base !== 10 && resolution.base !== 2) {
    throw new UsageError("write pcapng", `timestamp resolution base ${String(resolution.base)} is neither 10 nor 2`);
  }
  return resolution.base === 2 ? 0x80 | resolution.exponent : resolution.exponent;
}

/** splitTimestamp without the argument check, for the readers (per packet). */
export function splitNanosecondTimestamp(timestamp: bigint): { seconds: number; nanoseconds: number } {
  let seconds = timestamp / 1_000_000_000n;
  let nanoseconds = timestamp % 1_000_000_000n;
  if (nanoseconds < 0n) {
    nanoseconds += 1_000_000_000n;
    seconds -= 1n;
  }
  return { seconds: Number(seconds), nanoseconds: Number(nanoseconds) };
}
