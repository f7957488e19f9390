/**
 * What /proc tells about a process the kernel hooks named by pid: parent
 * pid, user, executable, cgroup path and container id — the kernel's own
 * fields (pid, parent pid, uid, command, cgroup id, read at connect, accept
 * or listen) win where both exist. Read once per process and cached: an
 * entry is used while it is fresh and the kernel's command and parent for
 * the pid are ones seen with it; a different command (an exec) or parent (a
 * reused pid) reads /proc again. Best effort: a process that has exited
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
  /** The command the kernel reported when this was read (a thread's name may differ from the process's). */
  kernelCommand: string | null;
  readAt: number;
}

/** What the kernel hooks recorded about a process. */
export interface KernelProcess {
  pid: number | null;
  command: string | null;
  parentPid?: number | null;
  uid?: number | null;
  cgroupId?: string | null;
}

export class ProcessDetails {
  readonly #cache = new Map<number, Details>();

  /** /proc reads so far (each a process looked up anew, for tests and statistics). */
  reads = 0;

  /** The cached details of a process, read (again) when missing, stale, or not the process the kernel names. */
  #details(pid: number, kernel: KernelProcess): Details | undefined {
    const cached = this.#cache.get(pid);
    const command = kernel.command;
    const same = cached !== undefined
      && (kernel.parentPid === null || kernel.parentPid === undefined || cached.parentPid === null || kernel.parentPid === cached.parentPid)
      && (command === null || cached.command === command || cached.kernelCommand === command);
    if (same && Date.now() - cached.readAt < freshMilliseconds) return cached;
    this.reads++;
    const details = readDetails(pid);
    // Gone: what was cached is still this process's if it matches (it exited before its record was made).
    if (details === undefined) return same ? cached : undefined;
    details.kernelCommand = command;
    if (this.#cache.size >= maximumEntries) {
      for (const key of [...this.#cache.keys()].slice(0, maximumEntries / 4)) this.#cache.delete(key);
    }
    this.#cache.set(pid, details);
    return details;
  }

  /** The record's process from what the kernel said plus what /proc said. */
  describe(kernel: KernelProcess): AuditProcess | null {
    if (kernel.pid === null) return null;
    // (Not a copy of `kernel` with the pid narrowed: it is often a whole TcpEvent, one per stored connection end.)
    const details = this.#details(kernel.pid, kernel);
    const cgroupPath = details?.cgroupPath ?? null;
    return {
      pid: kernel.pid,
      parentPid: kernel.parentPid ?? details?.parentPid ?? null,
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
    kernelCommand: null,
    readAt: Date.now(),
  };
}
