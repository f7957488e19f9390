/**
 * Options of `netbpf audit record` that add a sink (src/audit/audit-sink.ts):
 * alert rules (--rules FILE), JSON lines (--jsonl PATH), ClickHouse
 * (--clickhouse URL), … Each entry becomes one option; when it is given,
 * `create` makes the sink before recording starts (so a bad rules file or
 * URL fails with exit 2 before anything is attached). Sinks receive every
 * stored batch, in order, and are closed when recording stops.
 *
 * To add a sink: append an entry to `auditSinkOptions` (one line here,
 * importing its module).
 */
import type { AuditLog } from "../audit/audit-log.js";
import type { AuditSink } from "../audit/audit-sink.js";

export interface AuditSinkOption {
  /** Commander flags, e.g. "--jsonl <path>". */
  flags: string;
  description: string;
  /** The option's attribute name as commander stores it (e.g. "jsonl", "clickhouse"). */
  attribute: string;
  /** Makes the sink from the option's value; throws a UsageError for bad input. */
  create(value: string, context: { log: AuditLog }): AuditSink | Promise<AuditSink>;
}

export const auditSinkOptions: AuditSinkOption[] = [
  // Alert rules (--rules FILE), JSON lines (--jsonl PATH) and ClickHouse (--clickhouse URL) plug in here.
];
