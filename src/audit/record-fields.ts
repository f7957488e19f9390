/**
 * Named fields of an audit record — `process.command`, `flow.remoteAddress`,
 * `dns.queryName`, … — as alert message templates and rate keys name them.
 * The lists are checked against the record interfaces at compile time, so a
 * field added to AuditRecord must be added here too.
 */
import { expectObject, expectString } from "../sys/argument-checks.js";
import { userNameForId } from "../sys/user-accounts.js";
import type { AuditAlert, AuditDns, AuditDrop, AuditFlow, AuditLoss, AuditProcess, AuditRecord } from "./audit-record.js";

type Section = "process" | "flow" | "dns" | "drop" | "loss" | "alert";
type TopField = Exclude<keyof AuditRecord, Section>;

const topFields: Record<TopField, true> = {
  sequence: true, kind: true, start: true, end: true, bytesSent: true, bytesReceived: true, packetsSent: true, packetsReceived: true, closeReason: true,
};
const sectionFields: { [S in Section]: Record<keyof NonNullable<AuditRecord[S]>, true> } = {
  process: { pid: true, parentPid: true, uid: true, command: true, executable: true, cgroupId: true, cgroupPath: true, containerId: true } satisfies Record<keyof AuditProcess, true>,
  flow: { protocol: true, family: true, direction: true, localAddress: true, localPort: true, remoteAddress: true, remotePort: true, remoteName: true } satisfies Record<keyof AuditFlow, true>,
  dns: { queryName: true, queryType: true, responseCode: true, answers: true, clientAddress: true, clientPort: true, serverAddress: true, serverPort: true } satisfies Record<keyof AuditDns, true>,
  drop: { source: true, rule: true, sourceAddress: true, packets: true, bytes: true } satisfies Record<keyof AuditDrop, true>,
  loss: { what: true, count: true, reason: true } satisfies Record<keyof AuditLoss, true>,
  alert: { rule: true, severity: true, message: true, triggerSequence: true } satisfies Record<keyof AuditAlert, true>,
};

/** Derived fields: `process.user` is the account name of `process.uid` (the number where it has none). */
const derivedFields = ["process.user"] as const;

/** Every field path a template or rate key may name. */
export const recordFieldPaths: readonly string[] = [
  ...Object.keys(topFields),
  ...Object.entries(sectionFields).flatMap(([section, fields]) => Object.keys(fields).map((field) => `${section}.${field}`)),
  ...derivedFields,
];

const knownPaths = new Set(recordFieldPaths);

export function isRecordFieldPath(path: string): boolean {
  return knownPaths.has(path);
}

export type RecordFieldValue = string | number | null;

/**
 * The value of a field of a record: dates as ISO 8601 text, arrays joined
 * with ",", null where the record has no such part or the field is unknown.
 */
export function recordField(record: AuditRecord, path: string): RecordFieldValue {
  expectObject("record field", "record", record);
  expectString("record field", "path", path);
  if (path === "process.user") {
    const uid = record.process?.uid;
    if (uid === null || uid === undefined) return null;
    return userNameForId(uid) ?? uid;
  }
  const dot = path.indexOf(".");
  let value: unknown;
  if (dot < 0) {
    value = (record as unknown as Record<string, unknown>)[path];
  } else {
    const section = (record as unknown as Record<string, unknown>)[path.slice(0, dot)];
    value = section === null || typeof section !== "object" ? null : (section as Record<string, unknown>)[path.slice(dot + 1)];
  }
  if (value === undefined || value === null) return null;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.join(",");
  if (typeof value === "number" || typeof value === "string") return value;
  return String(value);
}
