/**
 * netbpf's cache folder: small files that spare a later start some work
 * (kernel struct offsets read from BTF, V8 code for the CLI's bundles). It is
 * `$NETBPF_CACHE_DIR`, by default `/run/netbpf/cache` for root (tmpfs:
 * emptied at every boot) and `$XDG_CACHE_HOME/netbpf` (`~/.cache/netbpf`)
 * for other users, who cannot write to /run.
 *
 * What is read from it steers what root runs (offsets in eBPF programs,
 * compiled JavaScript), so a file is trusted only when nobody else could
 * have written it: the folder and the file belong to this process's
 * effective user and are writable by nobody else, the file is a regular file
 * (a symbolic link is not followed). Folders are created 0700, files 0600,
 * each written to a temporary name and renamed, so a reader never sees half
 * a file. Any failure only means no cache: reads return undefined and
 * writes return false.
 */
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, type Stats } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const defaultCacheDirectory = "/run/netbpf/cache";

/** The cache folder: `$NETBPF_CACHE_DIR`, else /run/netbpf/cache for root and ~/.cache/netbpf for other users. */
export function cacheDirectory(): string {
  if (process.env.NETBPF_CACHE_DIR) return process.env.NETBPF_CACHE_DIR;
  if (process.geteuid?.() === 0) return defaultCacheDirectory;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "netbpf");
}

/** 32-bit FNV-1a of a string, as hex: a short name for a longer key, or a check that a text changed. */
export function fingerprint(text: string): string {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, "0");
}

/** Whether a file or folder belongs to this process's effective user and nobody else can write to it. */
function ownedByUs(status: Stats): boolean {
  return status.uid === process.geteuid!() && (status.mode & 0o022) === 0;
}

function trustedDirectory(directory: string): boolean {
  try {
    const status = lstatSync(directory);
    return status.isDirectory() && ownedByUs(status);
  } catch {
    return false;
  }
}

function checkedName(name: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith(".")) throw new TypeError(`cache file name ${JSON.stringify(name)} is not a plain file name`);
  return name;
}

/** The content of cache file `name` in `directory`, when it exists and is trusted (see above); else undefined. */
export function readCacheFile(directory: string, name: string): Buffer | undefined {
  const path = join(directory, checkedName(name));
  if (process.geteuid === undefined || !trustedDirectory(directory)) return undefined;
  let descriptor: number;
  try {
    descriptor = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const status = fstatSync(descriptor);
    if (!status.isFile() || !ownedByUs(status)) return undefined;
    return readFileSync(descriptor);
  } catch {
    return undefined;
  } finally {
    closeSync(descriptor);
  }
}

/**
 * Writes cache file `name` in `directory` (creating the folder 0700 if
 * needed; an existing folder must be trusted): a temporary file, mode 0600,
 * renamed over the old one. Returns whether it was written.
 */
export function writeCacheFile(directory: string, name: string, data: string | Uint8Array): boolean {
  const path = join(directory, checkedName(name));
  if (process.geteuid === undefined) return false;
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    if (!trustedDirectory(directory)) return false;
    writeFileSync(temporary, data, { mode: 0o600, flag: "wx" });
    renameSync(temporary, path);
    return true;
  } catch {
    try {
      rmSync(temporary, { force: true });
    } catch {
      // Nothing was written.
    }
    return false;
  }
}

/**
 * Keeps at most `keep` of our files in `directory` whose names start with
 * `prefix`: the ones touched (read or written) longest ago go. Files of other
 * users, folders and links are left alone. Returns how many were removed.
 */
export function pruneCacheFiles(directory: string, prefix: string, keep: number): number {
  if (process.geteuid === undefined || !trustedDirectory(directory)) return 0;
  const files: { path: string; touched: number }[] = [];
  try {
    for (const name of readdirSync(directory)) {
      if (!name.startsWith(prefix) || name.endsWith(".tmp")) continue;
      const path = join(directory, name);
      const status = lstatSync(path);
      if (status.isFile() && ownedByUs(status)) files.push({ path, touched: Math.max(status.mtimeMs, status.atimeMs) });
    }
  } catch {
    return 0;
  }
  files.sort((a, b) => b.touched - a.touched);
  let removed = 0;
  for (const { path } of files.slice(keep)) {
    try {
      unlinkSync(path);
      removed++;
    } catch {
      // Gone already, or not ours to remove: nothing to do.
    }
  }
  return removed;
}
