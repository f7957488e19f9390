import type { AuditRecord } from "./audit-record.js";

/**
 * The columns a record has in every table store — the audit log (SQLite) and
 * ClickHouse alike: its process, its flow and its counters, flattened under
 * snake_case names, null where the record has none.
 */
export interface RecordColumns {
  pid: number | null;
  parent_pid: number | null;
  uid: number | null;
  command: string | null;
  executable: string | null;
  cgroup_id: string | null;
  cgroup_path: string | null;
  container_id: string | null;
  protocol: string | null;
  family: string | null;
  direction: string | null;
  local_address: string | null;
  local_port: number | null;
  remote_address: string | null;
  remote_port: number | null;
  remote_name: string | null;
  bytes_sent: number | null;
  bytes_received: number | null;
  packets_sent: number | null;
  packets_received: number | null;
  close_reason: string | null;
}

/** The names of RecordColumns, in the order recordColumnValues gives them (the audit log's column order). */
export const recordColumnNames = [
  "pid", "parent_pid", "uid", "command", "executable", "cgroup_id", "cgroup_path", "container_id",
  "protocol", "family", "direction", "local_address", "local_port", "remote_address", "remote_port", "remote_name",
  "bytes_sent", "bytes_received", "packets_sent", "packets_received", "close_reason",
] as const satisfies readonly (keyof RecordColumns)[];

/**
 * A record's process, flow and counter columns as values in recordColumnNames
 * order, built at once without an intermediate object: the audit log calls
 * this for every record it stores.
 */
export function recordColumnValues(record: AuditRecord): (string | number | null)[] {
  const { process, flow } = record;
  return [
    process ? process.pid ?? null : null,
    process ? process.parentPid ?? null : null,
    process ? process.uid ?? null : null,
    process ? process.command ?? null : null,
    process ? process.executable ?? null : null,
    process ? process.cgroupId ?? null : null,
    process ? process.cgroupPath ?? null : null,
    process ? process.containerId ?? null : null,
    flow ? flow.protocol ?? null : null,
    flow ? flow.family ?? null : null,
    flow ? flow.direction ?? null : null,
    flow ? flow.localAddress ?? null : null,
    flow ? flow.localPort ?? null : null,
    flow ? flow.remoteAddress ?? null : null,
    flow ? flow.remotePort ?? null : null,
    flow ? flow.remoteName ?? null : null,
    record.bytesSent, record.bytesReceived, record.packetsSent, record.packetsReceived, record.closeReason,
  ];
}

/** A record's process, flow and counter columns by name (see RecordColumns). */
export function recordColumns(record: AuditRecord): RecordColumns {
  const values = recordColumnValues(record);
  const columns: Partial<Record<keyof RecordColumns, string | number | null>> = {};
  recordColumnNames.forEach((name, index) => (columns[name] = values[index]!));
  return columns as RecordColumns;
}
