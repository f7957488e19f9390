/**
 * Runs one of the CLI's CommonJS bundles (scripts/bundle-cli.ts) with a V8
 * code cache: the bytecode V8 compiled for the bundle on an earlier run,
 * kept in netbpf's cache folder (src/sys/private-cache.ts), so a start skips
 * parsing and compiling the functions it runs. Node 20 has no compile cache
 * of its own (module.enableCompileCache came with Node 22).
 *
 * A cache file is used only when it was made for this very bundle file: its
 * first line names the Node version, the architecture and the bundle's path,
 * device, inode, size, modification and change times (any rewrite of the
 * bundle changes its change time, which no user can set); V8 checks its own
 * version and flags on top. Otherwise it is ignored and, when the command
 * has run, replaced. Files come and go under the rules of private-cache.ts:
 * a cache file somebody else could have written is never used.
 */
import { readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname } from "node:path";
import { Script } from "node:vm";
import { cacheDirectory, fingerprint, readCacheFile, writeCacheFile } from "../sys/private-cache.js";

/** What became of the code cache: used; none yet; one for another build of the bundle; refused by V8; or no cache folder. */
export type CodeCacheState = "used" | "absent" | "stale" | "rejected" | "off";

export interface LoadedBundle {
  /** The bundle's module.exports. */
  exports: Record<string, unknown>;
  cache: CodeCacheState;
  /**
   * Stores the code V8 holds for the bundle now (what ran so far compiled)
   * when the cache was not used; returns whether a file was written. Called
   * when the command has done its start-up work, or at exit.
   */
  saveCache(): boolean;
}

const magic = "netbpf-code-cache 1";

/** The identity a cache file must carry to be used for `file`. */
function identityOf(file: string): string {
  const status = statSync(file, { bigint: true });
  return `${magic} ${process.version} ${process.arch} ${status.dev} ${status.ino} ${status.size} ${status.mtimeNs} ${status.ctimeNs} ${file}`;
}

/** The cache file's name for a bundle: its path's fingerprint (two installations do not share one) and its name. */
export function codeCacheName(file: string): string {
  return `code-${fingerprint(file)}-${basename(file).replace(/[^A-Za-z0-9_.-]/g, "_")}.v8`;
}

/**
 * Loads and runs the CommonJS bundle `file` (an absolute path, ASCII text)
 * as Node would require it, with the code cache from `directory` (default:
 * the cache folder; false: none).
 */
export function loadBundle(file: string, options: { directory?: string | false } = {}): LoadedBundle {
  const directory = options.directory === false ? undefined : (options.directory ?? cacheDirectory());
  const name = codeCacheName(file);
  const identity = identityOf(file);
  let cache: CodeCacheState = directory === undefined ? "off" : "absent";
  let cachedData: Buffer | undefined;
  const stored = directory === undefined ? undefined : readCacheFile(directory, name);
  if (stored !== undefined) {
    const end = stored.indexOf(10);
    if (end > 0 && stored.toString("latin1", 0, end) === identity) cachedData = stored.subarray(end + 1);
    else cache = "stale";
  }
  // The bundles are ASCII (esbuild's charset: "ascii"): latin1 is the cheapest exact decoding.
  const source = readFileSync(file, "latin1");
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: file, cachedData });
  if (cachedData !== undefined) cache = script.cachedDataRejected === true ? "rejected" : "used";
  const module = { exports: {} as Record<string, unknown> };
  (script.runInThisContext() as (...args: unknown[]) => void)(module.exports, createRequire(file), module, file, dirname(file));
  let saved = false;
  return {
    exports: module.exports,
    cache,
    saveCache() {
      if (saved || cache === "used" || directory === undefined) return false;
      saved = true;
      return writeCacheFile(directory, name, Buffer.concat([Buffer.from(`${identity}\n`, "latin1"), script.createCachedData()]));
    },
  };
}
