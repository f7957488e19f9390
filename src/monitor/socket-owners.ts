/**
 * Which process owns a port, for sockets that existed before netbpf started
 * (the kernel hooks only see sockets created or bound while they are
 * attached): /proc/PID/net/{tcp,tcp6,udp,udp6} give each socket's local port
 * and inode (one PID per network namespace), /proc/PID/fd links name the
 * inodes a process holds. Like ss -p, across namespaces.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

export interface ProcessIdentity {
  pid: number;
  command: string;
}

const tables: [string, number][] = [["tcp", 6], ["tcp6", 6], ["udp", 17], ["udp6", 17]];
/** TCP states worth attributing by port: LISTEN (0A); UDP sockets are all "bound" (07). */
const listenState = "0A";

/** One process per network namespace (by the namespace's inode), to read that namespace's socket tables through. */
function namespaceRepresentatives(pids: readonly string[]): string[] {
  const seen = new Map<string, string>();
  try {
    seen.set(readlinkSync("/proc/self/ns/net"), "self");
  } catch {
    return ["self"];
  }
  for (const pid of pids) {
    try {
      const namespace = readlinkSync(`/proc/${pid}/ns/net`);
      if (!seen.has(namespace)) seen.set(namespace, pid);
    } catch {
      // exited, or not ours to read
    }
  }
  return [...seen.values()];
}

/**
 * (protocol << 16 | port) → socket inode, for listening TCP and bound UDP
 * sockets of every network namespace a process is in (the first one found
 * wins when two namespaces use the same port).
 */
function boundPortInodes(pids: readonly string[], protocols: ReadonlySet<number>): Map<number, string> {
  const inodes = new Map<number, string>();
  // Only the tables of the protocols asked about: a busy host's TCP tables run to megabytes.
  const wanted = tables.filter(([, number]) => protocols.has(number));
  for (const [file, protocol] of namespaceRepresentatives(pids).flatMap((pid) => wanted.map(([name, number]) => [`/proc/${pid}/net/${name}`, number] as const))) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const port = Number.parseInt(fields[1]!.split(":")[1] ?? "", 16);
      if (protocol === 6 && fields[3] !== listenState) continue;
      const inode = fields[9]!;
      if (!Number.isInteger(port) || inode === "0") continue;
      if (!inodes.has((protocol << 16) | port)) inodes.set((protocol << 16) | port, inode);
    }
  }
  return inodes;
}

/** Socket inode → process holding it, for the inodes asked about. */
function inodeOwners(wanted: Set<string>, pids: readonly string[]): Map<string, ProcessIdentity> {
  const owners = new Map<string, ProcessIdentity>();
  if (wanted.size === 0) return owners;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!target.startsWith("socket:[")) continue;
      const inode = target.slice(8, -1);
      if (!wanted.has(inode) || owners.has(inode)) continue;
      let command = "";
      try {
        command = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      } catch {
        // exited meanwhile
      }
      owners.set(inode, { pid: Number(pid), command });
      if (owners.size === wanted.size) return owners;
    }
  }
  return owners;
}

/**
 * Owners of the given (protocol << 16 | port) keys found in procfs: listening
 * TCP and bound UDP sockets of any network namespace.
 */
export function procfsPortOwners(keys: Iterable<number>): Map<number, ProcessIdentity> {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return new Map();
  }
  const keyList = [...keys];
  const inodes = boundPortInodes(pids, new Set(keyList.map((key) => key >>> 16)));
  const wanted = new Map<number, string>();
  for (const key of keyList) {
    const inode = inodes.get(key);
    if (inode !== undefined) wanted.set(key, inode);
  }
  const owners = inodeOwners(new Set(wanted.values()), pids);
  const result = new Map<number, ProcessIdentity>();
  for (const [key, inode] of wanted) {
    const owner = owners.get(inode);
    if (owner) result.set(key, owner);
  }
  return result;
}
