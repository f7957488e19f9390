/**
 * What /proc tells about a process the kernel hooks named by pid: parent
 * pid, user, executable, cgroup path and container id. Read while the
 * process lives (at connect, accept or listen) and cached, so a record made
 * later (at close) still has them. Best effort: a process that has exited
 * before it is looked up keeps only what the kernel recorded.
 */
import { readFileSync, readlinkSync } from "node:fs";
import type { AuditProcess } from "./audit-record.js";

/** A cached entry is trusted this long (pids are reused). */
const freshMilliseconds = 60_000;
const maximumEntries = 4096;

/** A container id: 64 hex digits in the cgroup path (docker-<id>.scope, /docker/<id>, cri-containerd-<id>, libpod-<id>, …). */
export function containerIdOf(cgroupPath: string | null): string | null {
  if (cgroupPath === null) return null;
  const match = /(?:^|[/-])([0-9a-f]{64})(?:\.scope)?(?:\/|$)/.exec(cgroupPath);
  return match ? match[1]! : null;
}

interface Details {
  parentPid: number | null;
  uid: number | null;
  executable: string | null;
  cgroupPath: string | null;
  command: string | null;
  readAt: number;
}

export class ProcessDetails {
  readonly #cache = new Map<number, Details>();

  /** Reads (or refreshes) a process's details now, while it lives. */
  remember(pid: number): void {
    const cached = this.#cache.get(pid);
    if (cached !== undefined && Date.now() - cached.readAt < freshMilliseconds) return;
    const details = readDetails(pid);
    if (details === undefined) return;
    if (this.#cache.size >= maximumEntries) {
      for (const key of [...this.#cache.keys()].slice(0, maximumEntries / 4)) this.#cache.delete(key);
    }
    this.#cache.set(pid, details);
  }

  /** The record's process from what the kernel said plus what /proc said. */
  describe(kernel: { pid: number | null; command: string | null; uid?: number | null; cgroupId?: string | null }): AuditProcess | null {
    if (kernel.pid === null) return null;
    this.remember(kernel.pid);
    const details = this.#cache.get(kernel.pid);
    const cgroupPath = details?.cgroupPath ?? null;
    return {
      pid: kernel.pid,
      parentPid: details?.parentPid ?? null,
      uid: kernel.uid ?? details?.uid ?? null,
      command: kernel.command ?? details?.command ?? null,
      executable: details?.executable ?? null,
      cgroupId: kernel.cgroupId ?? null,
      cgroupPath,
      containerId: containerIdOf(cgroupPath),
    };
  }
}

function readDetails(pid: number): Details | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1] ?? null;
  const parent = field("PPid");
  const uid = field("Uid");
  let executable: string | null = null;
  try {
    executable = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // kernel thread, or gone
  }
  let cgroupPath: string | null = null;
  try {
    const line = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").find((entry) => entry.startsWith("0::"));
    if (line !== undefined) cgroupPath = line.slice(3);
  } catch {
    // gone
  }
  return {
    parentPid: parent === null ? null : Number(parent),
    uid: uid === null ? null : Number(uid.split(/\s+/)[0]),
    executable,
    cgroupPath,
    command: field("Name"),
    readAt: Date.now(),
  };
}
