/**
 * The records of a security audit (`netbpf audit`): what the recorder
 * (AuditRecorder) stores, what queries return, what alert rules are evaluated
 * against and what sinks (JSON lines, syslog, webhook, ClickHouse) receive.
 * One shape for all of them, so a record means the same thing everywhere.
 * Documented field by field in docs/audit.md.
 *
 * Every field is always present (null where it does not apply or is
 * unknown), so JSON output has stable field names.
 */
import { expectArray, expectDate, expectObject, expectOneOf } from "../sys/argument-checks.js";

/**
 * - `connection`: a TCP connection, stored when it closes (or when the
 *   recorder stops while it is open: `closeReason` "open").
 * - `listen`: a socket started listening.
 * - `udp`: a UDP flow over one interval (first and last packet, counts).
 * - `dns`: a DNS question and its answers seen on port 53.
 * - `drop`: packets dropped by a firewall rule or rate limit, per rule and
 *   source over one interval.
 * - `loss`: events the recorder could not record (ring full, map full),
 *   counted per interval.
 * - `alert`: an alert rule matched another record (`alert` holds which).
 */
export type AuditRecordKind = "connection" | "listen" | "udp" | "dns" | "drop" | "loss" | "alert";

export const auditRecordKinds: readonly AuditRecordKind[] = ["connection", "listen", "udp", "dns", "drop", "loss", "alert"];

/** The process behind a record, as far as it is known. */
export interface AuditProcess {
  pid: number | null;
  parentPid: number | null;
  uid: number | null;
  /** The kernel's task name (comm, up to 15 characters). */
  command: string | null;
  /** /proc/PID/exe when it could be read while the process lived. */
  executable: string | null;
  /** cgroup v2 id (the inode number of its cgroup folder). */
  cgroupId: string | null;
  /** The cgroup's path below /sys/fs/cgroup, when known. */
  cgroupPath: string | null;
  /** A container id (64 hex digits) found in the cgroup path, when there is one. */
  containerId: string | null;
}

export interface AuditFlow {
  protocol: "tcp" | "udp";
  family: "ipv4" | "ipv6";
  /** "outbound" (this host opened it), "inbound" (accepted), or null (unknown: began before recording). */
  direction: "outbound" | "inbound" | null;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** A DNS name seen answering with remoteAddress before this flow began, if any. */
  remoteName: string | null;
}

export interface AuditDns {
  /** The question name without the trailing dot, lower case. */
  queryName: string;
  /** The question type's mnemonic ("A", "AAAA", "PTR", …) or "TYPE<n>". */
  queryType: string;
  /** Response code mnemonic ("NOERROR", "NXDOMAIN", …); null when no answer was seen. */
  responseCode: string | null;
  /** Addresses from A and AAAA answers. */
  answers: string[];
  /** The client and resolver of the exchange. */
  clientAddress: string;
  clientPort: number;
  serverAddress: string;
  serverPort: number;
}

export interface AuditDrop {
  /** "firewall" or "limit". */
  source: "firewall" | "limit";
  /** The firewall rule id or the limit's name. */
  rule: string;
  /** The dropped packets' source address. */
  sourceAddress: string;
  packets: number;
  bytes: number;
}

export interface AuditLoss {
  /** What was lost: "tcp", "udp", "dns", "listen", "process". */
  what: string;
  count: number;
  /** Why: "ring full", "map full", "write failed", … */
  reason: string;
}

export interface AuditAlert {
  /** The rule's name, from the rules file. */
  rule: string;
  severity: "info" | "low" | "medium" | "high" | "critical";
  /** The rule's message template filled in from the record. */
  message: string;
  /** The sequence number of the record that triggered it. */
  triggerSequence: number | null;
}

export interface AuditRecord {
  /** Position in the log: 1, 2, 3, … (assigned when stored; 0 before). */
  sequence: number;
  kind: AuditRecordKind;
  /** When it began (connection opened, first packet, query sent, interval start). */
  start: Date;
  /** When it ended (connection closed, last packet, answer, interval end); equal to start for instants. */
  end: Date;
  process: AuditProcess | null;
  flow: AuditFlow | null;
  /** Payload bytes this host sent / received (TCP: acked and received; UDP: datagram payloads). */
  bytesSent: number | null;
  bytesReceived: number | null;
  packetsSent: number | null;
  packetsReceived: number | null;
  /** TCP: how the connection ended: "fin", "reset sent", "reset received", "timeout", "open" (still open when recording stopped). */
  closeReason: string | null;
  dns: AuditDns | null;
  drop: AuditDrop | null;
  loss: AuditLoss | null;
  alert: AuditAlert | null;
}

/** An AuditRecord from a caller: an object of a known kind with valid start and end dates (the parts are not checked). */
export function expectAuditRecord(operation: string, name: string, value: unknown): AuditRecord {
  const record = expectObject<AuditRecord>(operation, name, value);
  expectOneOf(operation, `${name}.kind`, record.kind, auditRecordKinds);
  expectDate(operation, `${name}.start`, record.start);
  expectDate(operation, `${name}.end`, record.end);
  return record;
}

/** A list of record kinds from a caller (a sink's `kinds` option). */
export function expectAuditRecordKinds(operation: string, name: string, value: unknown): readonly AuditRecordKind[] {
  const kinds = expectArray<AuditRecordKind>(operation, name, value);
  for (const kind of kinds) expectOneOf(operation, `${name}[]`, kind, auditRecordKinds);
  return kinds;
}
