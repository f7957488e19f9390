/**
 * Runs one of the CLI's CommonJS bundles (scripts/bundle-cli.ts) with a V8
 * code cache: the bytecode V8 compiled for the bundle on an earlier run,
 * kept in netbpf's cache folder (src/sys/private-cache.ts), so a start skips
 * parsing and compiling the functions it runs. Node 20 has no compile cache
 * of its own (module.enableCompileCache came with Node 22).
 *
 * A cache file holds the bundle's text it was made for, and is used only
 * when that text is byte for byte the bundle's now (V8 itself checks only
 * the length), for the same Node version and architecture; V8 checks its own
 * version and flags on top. Otherwise it is ignored and, when the command
 * has run, replaced. Files come and go under the rules of private-cache.ts:
 * a cache file somebody else could have written is never used.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname } from "node:path";
import { Script } from "node:vm";
import { cacheDirectory, fingerprint, pruneCacheFiles, readCacheFile, writeCacheFile } from "../sys/private-cache.js";

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

/**
 * Code cache files kept in the folder: every bundle of about three
 * installations (or Node versions). Each new file beyond that removes the
 * one used longest ago, so checkouts that come and go do not fill /run.
 */
export const codeCacheFilesKept = 60;

/**
 * The V8 data in a cache file when the file was made by this Node for
 * exactly `source`. The file is: a line naming the format, the Node
 * version and the architecture; a line with the source's length in bytes;
 * the source; the V8 data.
 */
function cachedDataFor(stored: Buffer, identity: string, source: Buffer): Buffer | undefined {
  const first = stored.indexOf(10);
  if (first <= 0 || stored.toString("latin1", 0, first) !== identity) return undefined;
  const second = stored.indexOf(10, first + 1);
  if (second < 0 || stored.toString("latin1", first + 1, second) !== String(source.length)) return undefined;
  const end = second + 1 + source.length;
  return end < stored.length && stored.subarray(second + 1, end).equals(source) ? stored.subarray(end) : undefined;
}

/**
 * The cache file's name for a bundle: a fingerprint of its path and of Node's
 * options (two installations, or runs with other V8 flags, which make V8
 * refuse the code, do not take turns overwriting one file), and its name.
 */
export function codeCacheName(file: string): string {
  return `code-${fingerprint(`${file} ${process.execArgv.join(" ")}`)}-${basename(file).replace(/[^A-Za-z0-9_.-]/g, "_")}.v8`;
}

/**
 * Loads and runs the CommonJS bundle `file` (an absolute path, ASCII text)
 * as Node would require it, with the code cache from `directory` (default:
 * the cache folder; false: none).
 */
export function loadBundle(file: string, options: { directory?: string | false } = {}): LoadedBundle {
  const directory = options.directory === false ? undefined : (options.directory ?? cacheDirectory());
  const name = codeCacheName(file);
  const identity = `${magic} ${process.version} ${process.arch}`;
  const source = readFileSync(file);
  let cache: CodeCacheState = directory === undefined ? "off" : "absent";
  let cachedData: Buffer | undefined;
  const stored = directory === undefined ? undefined : readCacheFile(directory, name);
  if (stored !== undefined) {
    cachedData = cachedDataFor(stored, identity, source);
    if (cachedData === undefined) cache = "stale";
  }
  // The bundles are ASCII (esbuild's charset: "ascii"): latin1 is the cheapest exact decoding.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source.toString("latin1")}\n})`, { filename: file, cachedData });
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
      const written = writeCacheFile(directory, name, Buffer.concat([Buffer.from(`${identity}\n${source.length}\n`, "latin1"), source, script.createCachedData()]));
      if (written && cache === "absent") pruneCacheFiles(directory, "code-", codeCacheFilesKept);
      return written;
    },
  };
}
