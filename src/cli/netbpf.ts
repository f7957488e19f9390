#!/usr/bin/env node
/**
 * The `netbpf` launcher, bundled by scripts/bundle-cli.ts into the published
 * `bin` (dist/src/cli/netbpf.cjs): it reads which command the line names and
 * runs that command's bundle (cli-main.ts plus the command's module) with
 * its V8 code cache (bundle-loader.ts); `--help`, `--version` and unknown
 * words run the listing's bundle. Nothing else loads before the bundle.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadBundle } from "./bundle-loader.js";
import { commandEntryFor } from "./command-table.js";

/** Bundle file per command module, and the listing's (""): set by scripts/bundle-cli.ts. */
declare const NETBPF_COMMAND_BUNDLES: Record<string, string>;

const selected = commandEntryFor(process.argv)?.module ?? "";
const bundle = loadBundle(join(dirname(fileURLToPath(import.meta.url)), NETBPF_COMMAND_BUNDLES[selected]!));
// The cache holds what was compiled when it is written: after the start-up work, or at exit if that comes first.
process.once("exit", () => bundle.saveCache());
setTimeout(() => bundle.saveCache(), 2000).unref();
// run() reports its own errors (cli-main.ts).
void (bundle.exports.run as () => Promise<void>)();
