#!/usr/bin/env node
import { Command } from "commander";
import { commandPath, configureErrorOutput, reportError } from "./cli-errors.js";
import { registerCaptureCommand } from "./capture-command.js";
import { registerFeaturesCommand } from "./features-command.js";
import { registerFilterCommand } from "./filter-command.js";
import { registerObjectCommands } from "./object-commands.js";
import { registerGenCommand } from "./gen-command.js";
import { registerLoadCommand } from "./load-command.js";

// `netbpf … | head` closes our stdout early: that is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

const program = new Command();
program
  .name("netbpf")
  .description("eBPF network traffic interception and analysis")
  .version("0.1.0");
// Every error, the option parser's included, is reported the same way (src/cli/cli-errors.ts).
configureErrorOutput(program);
const fail = (error: unknown): never => reportError(error, commandPath(program, process.argv.slice(2)));
process.on("uncaughtException", fail);
process.on("unhandledRejection", fail);

registerFeaturesCommand(program);
registerFilterCommand(program);
registerObjectCommands(program);
registerCaptureCommand(program);
registerGenCommand(program);
registerLoadCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  fail(error);
}
