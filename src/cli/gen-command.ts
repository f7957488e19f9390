import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, relative, resolve, sep } from "node:path";
import type { Command } from "commander";
import { loadCollectionSpec } from "../elf/collection-spec.js";
import { generateTypeScriptBindings } from "../gen/typescript-bindings.js";
import { UsageError } from "../sys/errors.js";
import { writeLine } from "./output.js";

export interface GenCommandOptions {
  output?: string;
  type: string[];
  embed?: boolean;
  importFrom?: string;
}

const operation = "gen";

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The bindings for an object file, as `netbpf gen` writes them. */
export function generateBindingsForFile(objectFile: string, options: GenCommandOptions): string {
  if (!existsSync(objectFile)) throw new UsageError(operation, `${objectFile} does not exist`, "give the path of a clang-built eBPF object (clang -g -O2 -target bpf -c prog.c)");
  if (!statSync(objectFile).isFile()) throw new UsageError(operation, `${objectFile} is not a file`);
  const bytes = readFileSync(objectFile);
  const spec = loadCollectionSpec(bytes);
  if (!spec.parsedBtf) throw new UsageError(operation, `${objectFile} has no BTF, so the types of its maps are unknown`, "rebuild it with `clang -g` (BTF comes from debug info)");
  let objectPath = `./${basename(objectFile)}`;
  if (options.output) {
    let path = relative(dirname(resolve(options.output)), resolve(objectFile)).split(sep).join("/");
    if (!path.startsWith(".")) path = `./${path}`;
    objectPath = path;
  }
  return generateTypeScriptBindings(spec, {
    objectPath,
    // Embedded unless --no-embed: the module then works wherever it is compiled to (tsc's outDir, a bundle).
    embed: options.embed === false ? undefined : bytes,
    types: options.type,
    importFrom: options.importFrom,
    sourceName: basename(objectFile),
  });
}

export function registerGenCommand(program: Command): void {
  program.command("gen <object>")
    .description("write a TypeScript module with typed maps, event codecs and a loader for a clang-built object")
    .option("-o, --output <file>", "write the module here (default: standard output)")
    .option("-t, --type <name>", "also generate an interface and codec for this struct (e.g. a ring buffer event); repeatable", collect, [])
    .option("--embed", "embed the object in the module as base64 (the default)")
    .option("--no-embed", "load the object at run time from its path relative to the module (keep the .o next to the compiled module)")
    .option("--import-from <specifier>", "module to import netbpf from", "netbpf")
    .action((objectFile: string, options: GenCommandOptions) => {
      const source = generateBindingsForFile(objectFile, options);
      if (!options.output) {
        process.stdout.write(source);
        return;
      }
      // Write to a temporary file and rename, so a failure never leaves half a module.
      const temporary = `${options.output}.tmp-${process.pid}`;
      try {
        writeFileSync(temporary, source);
        renameSync(temporary, options.output);
      } catch (error) {
        rmSync(temporary, { force: true });
        throw new UsageError(operation, `cannot write ${options.output}: ${(error as Error).message}`, undefined, { cause: error });
      }
      writeLine(`wrote ${options.output}`);
    });
}
