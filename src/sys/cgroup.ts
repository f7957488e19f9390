/** cgroup v2: where it is mounted, and resolving a cgroup given by path. */
import { readFileSync, statSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { NetbpfError, UsageError } from "./errors.js";

/** The cgroup v2 mount point, from /proc/mounts (it is not always /sys/fs/cgroup). */
export function cgroup2Mount(): string {
  let mounts: string;
  try {
    mounts = readFileSync("/proc/mounts", "utf8");
  } catch (error) {
    throw new NetbpfError("find cgroup v2", `cannot read /proc/mounts: ${(error as Error).message}`);
  }
  for (const line of mounts.split("\n")) {
    const fields = line.split(" ");
    if (fields[2] === "cgroup2" && fields[1]) return fields[1].replace(/\\040/g, " ");
  }
  throw new NetbpfError("find cgroup v2", "no cgroup2 file system is mounted", "mount one with `mount -t cgroup2 none /sys/fs/cgroup/unified`");
}

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
