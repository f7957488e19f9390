/**
 * Finding (and, like bpftool, mounting when absent) the special file systems
 * netbpf needs: bpffs for pins, tracefs for tracepoint ids, cgroup v2 for
 * cgroup hooks. Always read /proc/mounts; never assume a path.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { errnoName, NetbpfError } from "./errors.js";
import { lastErrno } from "./libc.js";
import { libcMount } from "./libc.js";

export interface MountEntry {
  source: string;
  target: string;
  type: string;
  options: string;
}

export function readMounts(): MountEntry[] {
  return readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [source = "", target = "", type = "", options = ""] = line.split(" ");
      return { source, target: target.replace(/\\040/g, " "), type, options };
    });
}

function findMount(type: string): string | undefined {
  return readMounts().find((m) => m.type === type)?.target;
}

function mountAt(type: string, target: string, operation: string): string {
  const source = type === "bpf" ? "bpf" : "nodev";
  if (!existsSync(target)) mkdirSync(target, { recursive: true });
  // EBUSY: mounted meanwhile (by another process) — fine.
  const errno = libcMount(source, target, type, 0, null) === 0 ? 0 : lastErrno();
  if (errno !== 0 && errno !== 16) {
    throw new NetbpfError(operation, `${type} is not mounted and mounting it at ${target} failed with ${errnoName(errno)}`,
      `mount it yourself: mount -t ${type} ${source} ${target} (needs root)`);
  }
  return target;
}

/** The bpffs mount point (mounting /sys/fs/bpf when no bpffs is mounted). */
export function bpffsPath(): string {
  return findMount("bpf") ?? mountAt("bpf", "/sys/fs/bpf", "find bpffs");
}

/** The tracefs mount point (mounting /sys/kernel/tracing when absent). */
export function tracefsPath(): string {
  // Remembered while it still holds tracefs's events folder: a tool reading a
  // dozen tracepoint formats need not parse /proc/mounts a dozen times.
  if (knownTracefs !== undefined && existsSync(`${knownTracefs}/events`)) return knownTracefs;
  knownTracefs = findMount("tracefs") ?? mountAt("tracefs", "/sys/kernel/tracing", "find tracefs");
  return knownTracefs;
}

let knownTracefs: string | undefined;

/** The cgroup v2 mount point, e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified. */
export function cgroup2Path(): string {
  const path = findMount("cgroup2");
  if (!path) throw new NetbpfError("find cgroup v2", "no cgroup2 file system is mounted", "mount one: mount -t cgroup2 none /sys/fs/cgroup/unified");
  return path;
}

/** True when `path` lies on a bpffs mount. */
export function isOnBpffs(path: string): boolean {
  const mounts = readMounts().filter((m) => m.type === "bpf");
  return mounts.some((m) => path === m.target || path.startsWith(m.target.endsWith("/") ? m.target : m.target + "/"));
}
