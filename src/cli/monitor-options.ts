/** Option parsing shared by the monitoring commands (top, serve). */
import { UsageError } from "../sys/errors.js";

/** Commander collector for repeatable options. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function parsePorts(values: readonly string[] | undefined, operation: string): number[] {
  return (values ?? []).flatMap((value) => value.split(",")).map((text) => {
    const port = Number(text);
    if (text.trim() === "" || !Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(operation, `--port needs a port number 1-65535, got "${text}"`);
    return port;
  });
}

/** Seconds (decimal allowed) → milliseconds. */
export function parseSeconds(text: string | undefined, option: string, operation: string, fallback?: number): number | undefined {
  if (text === undefined) return fallback;
  const seconds = Number(text);
  if (text.trim() === "" || !Number.isFinite(seconds) || seconds <= 0 || seconds > 86400 * 365) throw new UsageError(operation, `${option} needs a positive number of seconds, got "${text}"`);
  return Math.round(seconds * 1000);
}

export function parseInteger(text: string | undefined, option: string, operation: string, minimum: number, maximum: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === "" || !Number.isInteger(value) || value < minimum || value > maximum) throw new UsageError(operation, `${option} needs an integer ${minimum}-${maximum}, got "${text}"`);
  return value;
}
