/** The kernel struct offsets the TCP programs read, from the running kernel's BTF. */
import { Btf } from "../btf/btf.js";
import { fieldLocation, findRootType } from "../btf/btf-query.js";
import { expectInstance } from "../sys/argument-checks.js";
import { NetbpfError } from "../sys/errors.js";

/** Kernel struct offsets the programs need, from the running kernel's BTF. */
export interface TcpKernelOffsets {
  bytesAcked: number;
  bytesReceived: number;
  smoothedRtt: number;
  totalRetransmits: number;
  taskFiles: number;
  filesTable: number;
  tableDescriptors: number;
  tableMaximum: number;
  filePrivateData: number;
  socketSock: number;
  taskRealParent: number;
  taskTgid: number;
}

const tcpKernelOffsetFields: readonly (keyof TcpKernelOffsets)[] = [
  "bytesAcked", "bytesReceived", "smoothedRtt", "totalRetransmits", "taskFiles", "filesTable",
  "tableDescriptors", "tableMaximum", "filePrivateData", "socketSock", "taskRealParent", "taskTgid",
];

/** Whether `value` has every field of TcpKernelOffsets, each a byte offset (e.g. as read back from a cache file). */
export function isTcpKernelOffsets(value: unknown): value is TcpKernelOffsets {
  if (typeof value !== "object" || value === null) return false;
  return tcpKernelOffsetFields.every((field) => Number.isInteger((value as Record<string, unknown>)[field]) && (value as Record<string, number>)[field]! >= 0);
}

export function tcpKernelOffsets(btf: Btf): TcpKernelOffsets {
  expectInstance("read kernel BTF", "btf", btf, Btf, "a Btf (e.g. from loadKernelBtf)");
  const roots = new Map<string, number>();
  const offset = (root: string, path: string, size: number) => {
    let rootId = roots.get(root);
    if (rootId === undefined) roots.set(root, (rootId = findRootType(btf, `struct ${root}`)));
    const location = fieldLocation(btf, rootId, path);
    if (location.bitfieldSize !== 0 || location.size !== size) {
      throw new NetbpfError("read kernel BTF", `${root}.${path} is ${location.bitfieldSize ? "a bitfield" : `${location.size} bytes`}, expected ${size} bytes`, "this kernel's struct layout is not one netbpf tcp knows");
    }
    return location.byteOffset;
  };
  return {
    bytesAcked: offset("tcp_sock", "bytes_acked", 8),
    bytesReceived: offset("tcp_sock", "bytes_received", 8),
    smoothedRtt: offset("tcp_sock", "srtt_us", 4),
    totalRetransmits: offset("tcp_sock", "total_retrans", 4),
    taskFiles: offset("task_struct", "files", 8),
    filesTable: offset("files_struct", "fdt", 8),
    tableDescriptors: offset("fdtable", "fd", 8),
    tableMaximum: offset("fdtable", "max_fds", 4),
    filePrivateData: offset("file", "private_data", 8),
    socketSock: offset("socket", "sk", 8),
    taskRealParent: offset("task_struct", "real_parent", 8),
    taskTgid: offset("task_struct", "tgid", 4),
  };
}
