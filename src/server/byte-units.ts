/**
 * Humanised units, one definition for the terminal (`netbpf top`) and the
 * dashboard page: this module imports nothing, so the server also sends its
 * compiled form to the browser as an ES module (/assets/byte-units.js).
 */

/** Bytes in binary units: "512B", "1.50KiB", "12.3MiB". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)}B` : `${value.toFixed(value < 10 ? 2 : 1)}${units[unit]}`;
}

/** A byte rate: "1.50MiB/s". */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** A count with an SI suffix: "950", "12.3k", "4.00M" (packets, packets per second). */
export function formatCount(count: number): string {
  const units = ["", "k", "M", "G", "T"];
  let value = count;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? String(Math.round(value)) : `${value.toFixed(value < 10 ? 2 : 1)}${units[unit]}`;
}

/** A duration given in milliseconds: "850µs", "12.5ms", "3.2s", "4m05s", "2h03m". */
export function formatDuration(milliseconds: number): string {
  if (milliseconds < 1) return `${Math.round(milliseconds * 1000)}µs`;
  if (milliseconds < 1000) return `${milliseconds.toFixed(milliseconds < 10 ? 2 : 1)}ms`;
  const seconds = milliseconds / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const whole = Math.floor(seconds);
  const two = (value: number) => String(value).padStart(2, "0");
  if (whole < 3600) return `${Math.floor(whole / 60)}m${two(whole % 60)}s`;
  return `${Math.floor(whole / 3600)}h${two(Math.floor((whole % 3600) / 60))}m`;
}
