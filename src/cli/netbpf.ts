#!/usr/bin/env node
import { Command } from "commander";
import { commandPath, configureErrorOutput, reportError } from "./cli-errors.js";
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
  .version("0.1.0");
// Every error, the option parser's included, is reported the same way (src/cli/cli-errors.ts).
configureErrorOutput(program);
const fail = (error: unknown): never => reportError(error, commandPath(program, process.argv.slice(2)));
process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);

// Only the module of the command being run is loaded (see command-table.ts; add new commands there).
await registerCommands(program, process.argv);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  fail(error);
}
