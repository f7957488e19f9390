/**
 * The command line once its command is known: the program (name, version,
 * error reporting), the command registered, argv parsed and run. Each
 * bundle of the published `bin` (scripts/bundle-cli.ts) is this plus one
 * command module; the launcher (src/cli/netbpf.ts) picks the bundle.
 */
import { Command, Help } from "commander";
import { commandPath, configureErrorOutput, reportError } from "./cli-errors.js";
import { commandTable } from "./command-table.js";

/**
 * Lists every command without loading any (for `netbpf --help`, `--version`,
 * a typo): a cheap entry per command that commander lists and suggests from.
 */
export function registerCommandListing(program: Command): void {
  const terms = new Map(commandTable.map((candidate) => [candidate.name, candidate.term]));
  const standard = new Help();
  program.configureHelp({ subcommandTerm: (command) => terms.get(command.name()) ?? standard.subcommandTerm(command) });
  for (const candidate of commandTable) program.command(candidate.name).description(candidate.description);
}

/** `netbpf … | head` closes our stdout early: that is not an error. */
function exitOnClosedOutput(error: NodeJS.ErrnoException): void {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
}

/**
 * Calls `prepare` with process.stdout when something first uses it, not
 * before: making the stream of a pipe or terminal loads Node's net and
 * stream modules (about 8 ms of CPU), which a command need not wait for
 * before its work is under way (capture's "listening" line goes out first).
 */
export function whenStdoutIsUsed(prepare: (stream: NodeJS.WriteStream) => void): void {
  const descriptor = Object.getOwnPropertyDescriptor(process, "stdout");
  if (descriptor?.get === undefined || descriptor.configurable !== true) {
    prepare(process.stdout);
    return;
  }
  const made = descriptor.get;
  Object.defineProperty(process, "stdout", {
    configurable: true,
    enumerable: descriptor.enumerable,
    get() {
      const stream = made.call(process) as NodeJS.WriteStream;
      Object.defineProperty(process, "stdout", { ...descriptor, get: () => stream });
      prepare(stream);
      return stream;
    },
  });
}

/**
 * Runs the command line `argv` with `register` adding its command (the
 * command the line names), or with the listing when it names none.
 */
export async function runCommandLine(register: ((program: Command) => void) | undefined, argv: readonly string[] = process.argv): Promise<void> {
  whenStdoutIsUsed((stream) => stream.on("error", exitOnClosedOutput));

  const program = new Command();
  program.enablePositionalOptions();
  program
    .name("netbpf")
    .description("eBPF network traffic interception and analysis")
    .version("0.1.0");
  // Every error, the option parser's included, is reported the same way (src/cli/cli-errors.ts).
  configureErrorOutput(program);
  const fail = (error: unknown): never => reportError(error, commandPath(program, argv.slice(2)));
  process.on("uncaughtException", fail);
  process.on("unhandledRejection", fail);

  (register ?? registerCommandListing)(program);

  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    fail(error);
  }
}
