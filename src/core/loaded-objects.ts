/** Enumerates what is loaded in the kernel (all processes): programs, maps and links, by id. */
import { getFdById, getNextId, type ObjectKind } from "../sys/bpf.js";
import { SyscallError } from "../sys/errors.js";
import { libcClose } from "../sys/libc.js";
import { linkInfo, mapInfo, programInfo, type LinkInfo, type MapInfo, type ProgramInfo } from "../sys/object-info.js";

function* ids(kind: ObjectKind): IterableIterator<number> {
  let id = 0;
  for (;;) {
    const next = getNextId(kind, id);
    if (next === undefined) return;
    yield next;
    id = next;
  }
}

/** Calls `read` on a temporary fd for each object still alive; objects that vanish meanwhile are skipped. */
function collect<T>(kind: ObjectKind, read: (fd: number) => T): T[] {
  const out: T[] = [];
  for (const id of ids(kind)) {
    let fd: number | undefined;
    try {
      fd = getFdById(kind, id);
    } catch (error) {
      // EAGAIN: another process is creating or tearing the object down right now.
      if (error instanceof SyscallError && (error.code === "EAGAIN" || error.code === "ENOENT")) continue;
      throw error;
    }
    if (fd === undefined) continue;
    try {
      out.push(read(fd));
    } finally {
      libcClose(fd);
    }
  }
  return out;
}

export function listPrograms(): ProgramInfo[] {
  return collect("program", (fd) => programInfo(fd));
}

export function listMaps(): MapInfo[] {
  return collect("map", (fd) => mapInfo(fd));
}

export function listLinks(): LinkInfo[] {
  return collect("link", (fd) => linkInfo(fd));
}
