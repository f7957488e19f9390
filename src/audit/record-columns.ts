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

/** A record's process, flow and counter columns (see RecordColumns). */
export function recordColumns(record: AuditRecord): RecordColumns {
  const { process, flow } = record;
  return {
    pid: process?.pid ?? null,
    parent_pid: process?.parentPid ?? null,
    uid: process?.uid ?? null,
    command: process?.command ?? null,
    executable: process?.executable ?? null,
    cgroup_id: process?.cgroupId ?? null,
    cgroup_path: process?.cgroupPath ?? null,
    container_id: process?.containerId ?? null,
    protocol: flow?.protocol ?? null,
    family: flow?.family ?? null,
    direction: flow?.direction ?? null,
    local_address: flow?.localAddress ?? null,
    local_port: flow?.localPort ?? null,
    remote_address: flow?.remoteAddress ?? null,
    remote_port: flow?.remotePort ?? null,
    remote_name: flow?.remoteName ?? null,
    bytes_sent: record.bytesSent,
    bytes_received: record.bytesReceived,
    packets_sent: record.packetsSent,
    packets_received: record.packetsReceived,
    close_reason: record.closeReason,
  };
}
