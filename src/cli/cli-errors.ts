/**
 * How the CLI reports an error — every error, whether the option parser,
 * a command or an unexpected exception raised it: one line
 * `netbpf: <operation>: <what> (<what to do>)` on standard error (a filter's
 * caret or a verifier report may follow), exit status 2 for bad input or
 * usage and 1 for a failure at run time. `NETBPF_DEBUG=1` adds the stack trace.
 */
import { CommanderError, type Command } from "commander";
import { formatVerifierError } from "../core/verifier-report.js";
import { ElfFormatError } from "../elf/elf-format-error.js";
import { CaptureFormatError } from "../pcap/capture-format-error.js";
import { hasCapability, NetbpfError, SyscallError, UsageError } from "../sys/errors.js";

/** Exit status for bad input or usage (options, arguments, expressions, files that are not what they should be). */
export const usageExitCode = 2;
/** Exit status for a failure while doing the work. */
export const failureExitCode = 1;

/** Commander codes that are not errors: help or the version was asked for. */
const informational = new Set(["commander.helpDisplayed", "commander.version"]);

/**
 * Routes the option parser's errors through {@link reportError}: commander
 * prints nothing itself and throws instead of exiting. Subcommands registered
 * afterwards inherit this.
 */
export function configureErrorOutput(program: Command): void {
  program.exitOverride().configureOutput({ outputError: () => {} });
}

/** The command a user was running, from the words of `argv` (without node and the script): "load", "map dump", or "" for the top level. */
export function commandPath(program: Command, words: readonly string[]): string {
  const path: string[] = [];
  let command = program;
  for (const word of words) {
    if (word === "--") break;
    if (word.startsWith("-")) continue;
    const next = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!next) break;
    path.push(next.name());
    command = next;
  }
  return path.join(" ");
}

/** The text of an error report (without the trailing newline) and its exit status. */
export function describeError(error: unknown, command = "", debug = false): { text: string; exitCode: number } {
  const withStack = (text: string): string => (debug && error instanceof Error && error.stack ? `${text}\n${error.stack}` : text);
  if (error instanceof CommanderError) {
    if (informational.has(error.code)) return { text: "", exitCode: 0 };
    // Help shown because a command was missing (`netbpf`, `netbpf map`): it is already on standard error.
    if (error.code === "commander.help") return { text: "", exitCode: error.exitCode === 0 ? 0 : usageExitCode };
    const message = error.message.replace(/^error: /, "").split("\n").map((line) => line.trim()).filter(Boolean).join(" ").replace(/\.$/, "");
    const help = command ? `netbpf ${command} --help` : "netbpf --help";
    return { text: withStack(`netbpf: ${command ? `${command}: ` : ""}${message} (see ${help})`), exitCode: usageExitCode };
  }
  const exitCode = isBadInput(error) ? usageExitCode : failureExitCode;
  const report = formatVerifierError(error);
  if (report !== undefined) return { text: withStack(`netbpf: ${(error as Error).message.split("\n")[0]}\n${report}`), exitCode };
  if (error instanceof NetbpfError) return { text: withStack(`netbpf: ${error.message}`), exitCode };
  if (error instanceof Error) {
    const text = `netbpf: ${error.message.split("\n")[0] || error.name}${debug ? "" : " (an unexpected error: NETBPF_DEBUG=1 shows where it came from)"}`;
    return { text: withStack(text), exitCode };
  }
  return { text: `netbpf: ${String(error)}`, exitCode };
}

/**
 * Bad usage, an input file that is not what it should be (not an ELF object,
 * not a capture), or a missing privilege: a refusal (EPERM/EACCES) while the
 * process lacks the capabilities netbpf needs — the user must run it
 * differently. The same refusal to a privileged process is a runtime failure.
 */
function isBadInput(error: unknown): boolean {
  if (error instanceof UsageError || error instanceof ElfFormatError || error instanceof CaptureFormatError) return true;
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof SyscallError && (cause.code === "EPERM" || cause.code === "EACCES")) {
      return (["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON"] as const).some((name) => hasCapability(name) === false);
    }
  }
  return false;
}

/** Prints the error's report and exits with its status. */
export function reportError(error: unknown, command = ""): never {
  const { text, exitCode } = describeError(error, command, Boolean(process.env.NETBPF_DEBUG) && process.env.NETBPF_DEBUG !== "0");
  if (text) process.stderr.write(`${text}\n`);
  process.exit(exitCode);
}
