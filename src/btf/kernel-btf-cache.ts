/**
 * Facts derived from the running kernel's BTF — struct member offsets and the
 * like — kept in a small JSON file, so that a tool started again on the same
 * boot does not read and parse the 5.5 MB of /sys/kernel/btf/vmlinux (about
 * 80 ms of CPU, and most of `netbpf tcp`'s start-up on a loaded machine).
 *
 * The file is keyed by the boot (vmlinux BTF cannot change without a reboot),
 * the size of the kernel's BTF, the source text of the function that computes
 * the facts and the time this module was built or installed (a new netbpf
 * computes afresh). It lives in netbpf's cache folder (src/sys/private-cache.ts:
 * `$NETBPF_CACHE_DIR`, by default `/run/netbpf/cache`, gone at the next boot;
 * a file only trusted when nobody but this user could have written it). Any
 * failure to read or write it only means computing from BTF again.
 */
import { readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { cacheDirectory as defaultDirectory, defaultCacheDirectory, fingerprint, readCacheFile, writeCacheFile } from "../sys/private-cache.js";
import type { Btf } from "./btf.js";
import { kernelBtfPath, loadKernelBtf } from "./kernel-btf.js";

export const defaultKernelBtfCacheDirectory = defaultCacheDirectory;

export interface KernelBtfFactsOptions {
  /** Where the cache files go (default: $NETBPF_CACHE_DIR, else /run/netbpf/cache); false: no cache. */
  directory?: string | false;
  /** The kernel BTF file (default /sys/kernel/btf/vmlinux). */
  path?: string;
  /** Checks facts read from the file (a file that fails is ignored and rewritten). */
  check?: (facts: unknown) => boolean;
}

interface CacheFile {
  identity: string;
  facts: unknown;
}

/** What the cached facts depend on: this boot, the kernel BTF's size, the computing function and this build of netbpf. */
function identityOf(path: string, compute: (btf: Btf) => unknown): string | undefined {
  try {
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "latin1").trim();
    const build = statSync(fileURLToPath(import.meta.url)).mtimeMs;
    return `${boot} ${path} ${statSync(path).size} ${fingerprint(compute.toString())} ${build}`;
  } catch {
    return undefined;
  }
}

function cacheDirectory(options: KernelBtfFactsOptions): string | undefined {
  if (options.directory === false) return undefined;
  return options.directory ?? defaultDirectory();
}

/**
 * `compute(kernel BTF)`, from the cache file `name` when it holds the answer
 * for this boot, kernel BTF and function; else computed and stored. The facts
 * must survive JSON (plain objects, arrays, numbers, strings). Errors thrown
 * by `compute` are not cached.
 */
export function kernelBtfFacts<T>(name: string, compute: (btf: Btf) => T, options: KernelBtfFactsOptions = {}): T {
  const path = options.path ?? kernelBtfPath;
  const directory = cacheDirectory(options);
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new TypeError(`kernelBtfFacts: invalid cache name ${JSON.stringify(name)}`);
  const identity = directory === undefined ? undefined : identityOf(path, compute);
  const file = `${name}.json`;
  if (directory !== undefined && identity !== undefined) {
    try {
      const cached = JSON.parse(readCacheFile(directory, file)?.toString("utf8") ?? "null") as CacheFile | null;
      if (cached !== null && cached.identity === identity && cached.facts !== undefined && (options.check?.(cached.facts) ?? true)) return cached.facts as T;
    } catch {
      // Unreadable: compute below.
    }
  }
  const facts = compute(loadKernelBtf(path));
  // A read-only or missing /run: the next start computes again.
  if (directory !== undefined && identity !== undefined) writeCacheFile(directory, file, JSON.stringify({ identity, facts } satisfies CacheFile));
  return facts;
}
