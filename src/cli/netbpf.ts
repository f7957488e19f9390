#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { NetbpfError } from "../sys/errors.js";
import { formatVerifierError } from "../core/verifier-report.js";

// `netbpf … | head` closes our stdout early: that is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

const program = new Command();
program
  .name("netbpf")
  .description("eBPF network traffic interception and analysis")
  .version("0.1.0")
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

// Each command's module loads only when that command runs (all of them for
// help): `netbpf tcp` does not pay for compiling the capture or load code.
const commandModules: { names: string[]; load: () => Promise<(program: Command) => void> }[] = [
  { names: ["features"], load: async () => (await import("./features-command.js")).registerFeaturesCommand },
  { names: ["filter"], load: async () => (await import("./filter-command.js")).registerFilterCommand },
  { names: ["prog", "map", "link"], load: async () => (await import("./object-commands.js")).registerObjectCommands },
  { names: ["capture"], load: async () => (await import("./capture-command.js")).registerCaptureCommand },
  { names: ["gen"], load: async () => (await import("./gen-command.js")).registerGenCommand },
  { names: ["load"], load: async () => (await import("./load-command.js")).registerLoadCommand },
  { names: ["status", "reset"], load: async () => (await import("./state-commands.js")).registerStateCommands },
  { names: ["tcp"], load: async () => (await import("./tcp-command.js")).registerTcpCommand },
  { names: ["top"], load: async () => (await import("./top-command.js")).registerTopCommand },
  { names: ["serve"], load: async () => (await import("./serve-command.js")).registerServeCommand },
  { names: ["block", "allow"], load: async () => (await import("./block-command.js")).registerBlockCommands },
  { names: ["rules"], load: async () => (await import("./rules-command.js")).registerRulesCommand },
  { names: ["limit"], load: async () => (await import("./limit-command.js")).registerLimitCommand },
  { names: ["mark"], load: async () => (await import("./mark-command.js")).registerMarkCommand },
];
const requested = commandModules.filter((command) => command.names.includes(process.argv[2] ?? ""));
for (const command of requested.length > 0 ? requested : commandModules) (await command.load())(program);

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
  process.exit(1);
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  fail(error);
}
