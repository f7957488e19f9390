/** cgroup v2: where it is mounted, and resolving a cgroup given by path. */
import { closeSync, constants, openSync, readFileSync, statSync } from "node:fs";
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

/**
 * The cgroup v2 root, where a program sees every process of the host.
 * `ip netns exec` remounts /sys in a new mount namespace, hiding the cgroup
 * mount: then reach it through init's root.
 */
export function rootCgroup(): string {
  try {
    return cgroup2Mount();
  } catch (error) {
    for (const line of readFileSync("/proc/1/mounts", "utf8").split("\n")) {
      const fields = line.split(" ");
      if (fields[2] === "cgroup2" && fields[1]) {
        const path = `/proc/1/root${fields[1].replace(/\\040/g, " ")}`;
        try {
          closeSync(openSync(path, constants.O_RDONLY | constants.O_DIRECTORY));
          return path;
        } catch {
          break;
        }
      }
    }
    throw new NetbpfError("find cgroup v2", "the cgroup v2 file system is not visible in this mount namespace (`ip netns exec` remounts /sys)", "run in the network namespace with `nsenter --net=/run/netns/NAME` instead, or mount cgroup2", { cause: error });
  }
}
