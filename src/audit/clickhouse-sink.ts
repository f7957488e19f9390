/**
 * Audit records into ClickHouse, so a fleet's records land in one queryable
 * table. Records are flattened into one row each (schema below and in
 * docs/audit-alerts.md), queued without making the recorder wait (bounded:
 * overflow is dropped and counted), and inserted in batches with
 * `@clickhouse/client` over ClickHouse's HTTP interface, retried with
 * exponential backoff. The table is created when missing.
 *
 * The schema uses only types every ClickHouse since 18.x knows (Debian 12
 * ships 18.16): `DateTime` for times to the second (partitioning, ranges)
 * with exact Unix milliseconds beside them, `Nullable` for fields a record
 * may lack.
 */
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from "@clickhouse/client";
import { hostname } from "node:os";
import { argumentError, expectArray, expectFunction, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import { expectAuditRecord, expectAuditRecordKinds, type AuditRecord, type AuditRecordKind } from "./audit-record.js";
import type { AuditSink } from "./audit-sink.js";
import { DeliveryQueue, type DeliveryStatistics, type RetryPolicy } from "./delivery-queue.js";
import { recordColumns } from "./record-columns.js";

/** The columns of the table, in order: name and ClickHouse type. */
export const clickHouseColumns: readonly (readonly [string, string])[] = [
  ["host", "String"],
  ["sequence", "UInt64"],
  ["kind", "String"],
  ["start", "DateTime('UTC')"],
  ["end", "DateTime('UTC')"],
  ["start_ms", "UInt64"],
  ["end_ms", "UInt64"],
  ["pid", "Nullable(UInt32)"],
  ["parent_pid", "Nullable(UInt32)"],
  ["uid", "Nullable(UInt32)"],
  ["command", "Nullable(String)"],
  ["executable", "Nullable(String)"],
  ["cgroup_id", "Nullable(String)"],
  ["cgroup_path", "Nullable(String)"],
  ["container_id", "Nullable(String)"],
  ["protocol", "Nullable(String)"],
  ["family", "Nullable(String)"],
  ["direction", "Nullable(String)"],
  ["local_address", "Nullable(String)"],
  ["local_port", "Nullable(UInt16)"],
  ["remote_address", "Nullable(String)"],
  ["remote_port", "Nullable(UInt16)"],
  ["remote_name", "Nullable(String)"],
  ["bytes_sent", "Nullable(UInt64)"],
  ["bytes_received", "Nullable(UInt64)"],
  ["packets_sent", "Nullable(UInt64)"],
  ["packets_received", "Nullable(UInt64)"],
  ["close_reason", "Nullable(String)"],
  ["dns_query_name", "Nullable(String)"],
  ["dns_query_type", "Nullable(String)"],
  ["dns_response_code", "Nullable(String)"],
  ["dns_answers", "Array(String)"],
  ["dns_client_address", "Nullable(String)"],
  ["dns_client_port", "Nullable(UInt16)"],
  ["dns_server_address", "Nullable(String)"],
  ["dns_server_port", "Nullable(UInt16)"],
  ["drop_source", "Nullable(String)"],
  ["drop_rule", "Nullable(String)"],
  ["drop_source_address", "Nullable(String)"],
  ["drop_packets", "Nullable(UInt64)"],
  ["drop_bytes", "Nullable(UInt64)"],
  ["loss_what", "Nullable(String)"],
  ["loss_count", "Nullable(UInt64)"],
  ["loss_reason", "Nullable(String)"],
  ["alert_rule", "Nullable(String)"],
  ["alert_severity", "Nullable(String)"],
  ["alert_message", "Nullable(String)"],
  ["alert_trigger_sequence", "Nullable(UInt64)"],
];

/** CREATE TABLE IF NOT EXISTS for `table`: MergeTree, a partition per month, sorted for time-range questions per kind and host. */
export function clickHouseTableStatement(table: string): string {
  checkTableName("ClickHouse table statement", "table", table);
  const columns = clickHouseColumns.map(([name, type]) => `  \`${name}\` ${type}`).join(",\n");
  return `CREATE TABLE IF NOT EXISTS ${table} (\n${columns}\n) ENGINE = MergeTree PARTITION BY toYYYYMM(start) ORDER BY (kind, start, host, sequence)`;
}

/** A table name is written into SQL as it is: letters, digits and _ only (optionally database.table). */
function checkTableName(operation: string, name: string, table: unknown): string {
  if (typeof table !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/.test(table)) {
    throw argumentError(operation, name, "a table name of letters, digits and _ (optionally database.table)", table);
  }
  return table;
}

export type ClickHouseRow = Record<string, string | number | null | string[]>;

/** ClickHouse's DateTime text, in UTC: `2026-12-04 18:00:00`. */
function dateTimeText(date: Date): string {
  return date.toISOString().slice(0, 19).replace("T", " ");
}

/** One record as a row of the table. */
export function clickHouseRow(record: AuditRecord, host: string): ClickHouseRow {
  expectAuditRecord("ClickHouse row", "record", record);
  expectString("ClickHouse row", "host", host);
  return row(record, host);
}

function row(record: AuditRecord, host: string): ClickHouseRow {
  const { dns, drop, loss, alert } = record;
  return {
    host,
    sequence: record.sequence,
    kind: record.kind,
    start: dateTimeText(record.start),
    end: dateTimeText(record.end),
    start_ms: record.start.getTime(),
    end_ms: record.end.getTime(),
    ...recordColumns(record),
    dns_query_name: dns?.queryName ?? null,
    dns_query_type: dns?.queryType ?? null,
    dns_response_code: dns?.responseCode ?? null,
    dns_answers: dns?.answers ?? [],
    dns_client_address: dns?.clientAddress ?? null,
    dns_client_port: dns?.clientPort ?? null,
    dns_server_address: dns?.serverAddress ?? null,
    dns_server_port: dns?.serverPort ?? null,
    drop_source: drop?.source ?? null,
    drop_rule: drop?.rule ?? null,
    drop_source_address: drop?.sourceAddress ?? null,
    drop_packets: drop?.packets ?? null,
    drop_bytes: drop?.bytes ?? null,
    loss_what: loss?.what ?? null,
    loss_count: loss?.count ?? null,
    loss_reason: loss?.reason ?? null,
    alert_rule: alert?.rule ?? null,
    alert_severity: alert?.severity ?? null,
    alert_message: alert?.message ?? null,
    alert_trigger_sequence: alert?.triggerSequence ?? null,
  };
}

export interface ClickHouseSinkOptions {
  /**
   * The server's HTTP interface: `http://HOST:8123`; user, password and
   * database may be in the URL (`http://user:secret@host:8123/audit`).
   */
  url: string;
  /** Table name (default "netbpf_audit"), created in the URL's database when missing. */
  table?: string;
  /** The `host` column (default: this machine's name). */
  host?: string;
  /** Kinds stored (default: every kind). */
  kinds?: readonly AuditRecordKind[];
  /** Rows per insert at most (default 10,000). */
  batchSize?: number;
  /** Rows waiting at most; beyond, records are dropped and counted (default 100,000). */
  capacity?: number;
  retry?: Partial<RetryPolicy>;
  /** Per-request timeout (default 30 s). */
  timeoutMilliseconds?: number;
  onError?: (error: unknown) => void;
}

/**
 * An AuditSink inserting into ClickHouse. `write` only queues; inserts run
 * in the background, one batch at a time, and the table is created (CREATE
 * TABLE IF NOT EXISTS) before the first insert — a server that is down at
 * start is retried like a failed insert.
 */
export class ClickHouseSink implements AuditSink {
  readonly url: URL;
  readonly table: string;
  readonly host: string;
  readonly kinds: readonly AuditRecordKind[] | undefined;
  readonly description: string;
  readonly #client: ClickHouseClient;
  readonly #queue: DeliveryQueue<ClickHouseRow>;
  #tableReady = false;

  constructor(options: ClickHouseSinkOptions) {
    const operation = "ClickHouse sink";
    expectObject(operation, "options", options);
    expectString(operation, "options.url", options.url);
    if (options.host !== undefined) expectString(operation, "options.host", options.host);
    if (options.timeoutMilliseconds !== undefined) expectInteger(operation, "options.timeoutMilliseconds", options.timeoutMilliseconds, 1);
    if (options.onError !== undefined) expectFunction(operation, "options.onError", options.onError);
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new UsageError("ClickHouse sink", `${JSON.stringify(options.url)} is not a URL`, "write e.g. http://localhost:8123");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new UsageError("ClickHouse sink", `${JSON.stringify(options.url)}: ClickHouse's HTTP interface needs an http or https URL`, "write e.g. http://localhost:8123");
    }
    const table = checkTableName(operation, "options.table", options.table ?? "netbpf_audit");
    this.url = url;
    this.table = table;
    this.host = options.host ?? hostname();
    this.kinds = options.kinds === undefined ? undefined : expectAuditRecordKinds(operation, "options.kinds", options.kinds);
    this.description = `clickhouse ${url.origin}${url.pathname === "/" ? "" : url.pathname} table ${table}`;
    const database = decodeURIComponent(url.pathname.replace(/^\/+|\/+$/g, ""));
    this.#client = createClient({
      url: `${url.protocol}//${url.host}`,
      username: url.username === "" ? undefined : decodeURIComponent(url.username),
      password: url.password === "" ? undefined : decodeURIComponent(url.password),
      database: database === "" ? undefined : database,
      request_timeout: options.timeoutMilliseconds ?? 30_000,
      application: "netbpf",
      // Failures are counted and reported through onError, never printed by the client.
      log: { level: ClickHouseLogLevel.OFF },
    });
    const onError = options.onError;
    this.#queue = new DeliveryQueue<ClickHouseRow>({
      capacity: options.capacity ?? 100_000,
      batchSize: options.batchSize ?? 10_000,
      retry: options.retry,
      deliver: (rows) => this.#insert(rows),
      onError: onError === undefined ? undefined : (error) => onError(error),
    });
  }

  write(records: AuditRecord[]): void {
    expectArray("write to ClickHouse", "records", records);
    const rows: ClickHouseRow[] = [];
    for (const record of records) {
      expectAuditRecord("write to ClickHouse", "records[]", record);
      if (this.kinds === undefined || this.kinds.includes(record.kind)) rows.push(row(record, this.host));
    }
    if (rows.length > 0) this.#queue.push(rows);
  }

  statistics(): DeliveryStatistics {
    return this.#queue.statistics();
  }

  /** Waits until everything queued is inserted or given up on. */
  drain(): Promise<void> {
    return this.#queue.drain();
  }

  /** Inserts what is queued (waiting up to `timeoutMilliseconds`), then closes the connection. */
  async close(timeoutMilliseconds = 10_000): Promise<void> {
    expectInteger("close ClickHouse sink", "timeoutMilliseconds", timeoutMilliseconds, 0);
    await this.#queue.close(timeoutMilliseconds);
    await this.#client.close();
  }

  async #insert(rows: ClickHouseRow[]): Promise<void> {
    if (!this.#tableReady) {
      await this.#client.command({ query: clickHouseTableStatement(this.table) });
      this.#tableReady = true;
    }
    await this.#client.insert({ table: this.table, values: rows, format: "JSONEachRow" });
  }
}
