import { expectFunction, expectObject } from "../sys/argument-checks.js";
import type { AuditRecord } from "./audit-record.js";

/**
 * Where an AuditRecorder hands its records besides the audit log: alert
 * rules, JSON lines, syslog, webhooks, ClickHouse, … The recorder calls
 * `write` once per batch, in order, after the batch is stored in the
 * AuditLog (so records carry their final `sequence`), and awaits it before
 * the next batch; a sink that must not slow recording (a webhook) queues
 * internally. `close` is called once when the recorder stops, after the last
 * `write`. A sink that throws is reported and counted as a `loss` record
 * ("sink failed"); recording goes on.
 */
export interface AuditSink {
  write(records: AuditRecord[]): void | Promise<void>;
  close(): Promise<void>;
  /**
   * Optional: called once before the first `write` with a function that
   * stores records the sink makes itself (alert records) in the audit log;
   * they are stored with the next batch and then written to every sink too
   * (including this one: a sink ignores kinds it does not want).
   */
  start?(context: AuditSinkContext): void;
}

export interface AuditSinkContext {
  /** Queue records (sequence 0) for storing in the audit log with the next batch. */
  store(records: AuditRecord[]): void;
}

/** A sink from a plain function (no close work). */
export function auditSinkFromFunction(onRecords: (records: AuditRecord[]) => void | Promise<void>): AuditSink {
  expectFunction("audit sink from function", "onRecords", onRecords);
  return {
    write: onRecords,
    async close() {},
  };
}

/** An AuditSink from a caller: an object with write and close functions. */
export function expectAuditSink(operation: string, name: string, value: unknown): AuditSink {
  const sink = expectObject<AuditSink>(operation, name, value);
  expectFunction(operation, `${name}.write`, sink.write);
  expectFunction(operation, `${name}.close`, sink.close);
  if (sink.start !== undefined) expectFunction(operation, `${name}.start`, sink.start);
  return sink;
}
