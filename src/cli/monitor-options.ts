/** Option parsing shared by the monitoring commands (top, serve). */
import { CommanderError, type Command } from "commander";
import { SyscallError, UsageError } from "../sys/errors.js";

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

/**
 * Runs a command's action; bad input (a UsageError) or a missing privilege
 * ends it with a one-line message and exit status 2, as the monitoring
 * commands document. Other errors go to the CLI's common path (status 1).
 */
export async function withUsageExit(action: () => Promise<void> | void): Promise<void> {
  try {
    await action();
  } catch (error) {
    const privilege = error instanceof SyscallError && (error.code === "EPERM" || error.code === "EACCES");
    if (error instanceof UsageError || privilege) {
      process.stderr.write(`netbpf: ${(error as Error).message}\n`);
      process.exit(2);
    }
    throw error;
  }
}

/** Makes commander's own usage errors (unknown option, bad choice, missing value) exit with status 2. */
export function exitTwoOnUsageErrors(command: Command): Command {
  return command.exitOverride((error) => {
    if (error.exitCode === 0) throw error;
    throw new CommanderError(2, error.code, error.message);
  });
}
