#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { formatVerifierError } from "../core/verifier-report.js";
import { registerCommands } from "./command-table.js";

// `netbpf … | head` closes our stdout early: that is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

const program = new Command();
program.enablePositionalOptions();
program
  .name("netbpf")
  .description("eBPF network traffic interception and analysis")
  .version("0.1.0")
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

// Only the module of the command being run is loaded (see command-table.ts; add new commands there).
await registerCommands(program, process.argv);

function fail(error: unknown): never {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  const report = formatVerifierError(error);
  if (report !== undefined) {
    process.stderr.write(`netbpf: ${(error as Error).message.split("\n")[0]}\n${report}\n`);
  } else if (error instanceof NetbpfError) {
    process.stderr.write(`netbpf: ${error.message}\n`);
  } else if (error instanceof Error) {
    process.stderr.write(`netbpf: ${error.message}\n`);
    if (process.env.NETBPF_DEBUG) process.stderr.write(`${error.stack}\n`);
  } else {
    process.stderr.write(`netbpf: ${String(error)}\n`);
  }
  process.exit(error instanceof UsageError ? 2 : 1);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  fail(error);
}
