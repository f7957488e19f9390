/** cgroup v2: where it is mounted, and resolving a cgroup given by path. */
import { readFileSync, statSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { NetbpfError, UsageError } from "./errors.js";
import { cgroup2Path } from "./mounts.js";

/** The cgroup v2 mount point, from /proc/mounts (it is not always /sys/fs/cgroup). */
export const cgroup2Mount = cgroup2Path;

/**
 * A cgroup directory: an absolute path is used as it is; a relative one is
 * taken inside the cgroup v2 mount.
 */
export function cgroupPath(path: string): string {
  const full = isAbsolute(path) ? path : join(cgroup2Mount(), path);
  let isDirectory = false;
  try {
    isDirectory = statSync(full).isDirectory();
  } catch {
    // reported below
  }
  if (!isDirectory) {
    throw new UsageError("find cgroup", `there is no cgroup at ${full}`, `cgroup v2 is mounted at ${safeMount()}; create one with mkdir there`);
  }
  return full;
}

function safeMount(): string {
  try {
    return cgroup2Mount();
  } catch {
    return "(not mounted)";
  }
}
