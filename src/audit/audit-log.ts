/**
 * AuditLog: the durable store of a security audit — an SQLite database
 * (better-sqlite3) holding AuditRecords in one table, hash-chained, with
 * indexes for the common questions. Schema and guarantees in docs/audit.md.
 *
 * - Writes come in batches, one transaction each, in WAL mode with
 *   synchronous=FULL: a crash (kill -9, power loss) loses at most the batch
 *   being written, and the file always opens.
 * - Every row stores SHA-256(previous row's hash + "\n" + its canonical
 *   content), the canonical content being the JSON array of its column values
 *   in schema order. The hash of the newest row and of the last row removed
 *   by retention (the anchor) are kept in the `meta` table, so verify()
 *   detects a changed, inserted or deleted row, and a cut-off end.
 * - Retention (age, size) removes the oldest rows (a prefix by sequence) and
 *   moves the anchor.
 * - A file that is not an audit database, or is corrupted, is never written:
 *   opening it throws a UsageError (exit 2 from the CLI).
 */
import { hash as oneShotHash } from "node:crypto";
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { argumentError, expectArray, expectBoolean, expectDate, expectInteger, expectIterable, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { auditRecordKinds, expectAuditRecord, type AuditRecord, type AuditRecordKind } from "./audit-record.js";
import { recordColumnValues } from "./record-columns.js";
import { expectSeenKey, type SeenKey } from "./seen-history.js";

const require = createRequire(import.meta.url);

/** PRAGMA application_id of an audit database: "nbau". */
export const auditApplicationId = 0x6e626175;
/**
 * PRAGMA user_version: the schema version. 2: fewer indexes than 1 (the
 * records and their hashes are the same); a version 1 log is migrated when
 * opened for writing, and read as it is.
 */
export const auditSchemaVersion = 2;
/** Versions this code reads (and migrates to auditSchemaVersion when writing). */
const readableSchemaVersions = [1, 2];
/** The page size of a new audit database (an existing one keeps its own). */
export const auditPageSize = 16384;
/** The hash before the first record. */
export const genesisHash = "0".repeat(64);

/** The columns of `records` in schema order (the canonical content is their values in this order). */
export const auditColumns = [
  "sequence", "kind", "start_ms", "end_ms",
  "pid", "parent_pid", "uid", "command", "executable", "cgroup_id", "cgroup_path", "container_id",
  "protocol", "family", "direction", "local_address", "local_port", "remote_address", "remote_port", "remote_name",
  "bytes_sent", "bytes_received", "packets_sent", "packets_received", "close_reason",
  "dns_name", "detail",
] as const;

type Column = (typeof auditColumns)[number];
type Cell = string | number | null;
export type AuditRow = Record<Column, Cell> & { hash: string };

const schema = `
CREATE TABLE records (
  sequence INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  start_ms INTEGER NOT NULL,
  end_ms INTEGER NOT NULL,
  pid INTEGER, parent_pid INTEGER, uid INTEGER, command TEXT, executable TEXT,
  cgroup_id TEXT, cgroup_path TEXT, container_id TEXT,
  protocol TEXT, family TEXT, direction TEXT,
  local_address TEXT, local_port INTEGER, remote_address TEXT, remote_port INTEGER, remote_name TEXT,
  bytes_sent INTEGER, bytes_received INTEGER, packets_sent INTEGER, packets_received INTEGER,
  close_reason TEXT,
  dns_name TEXT,
  detail TEXT,
  hash TEXT NOT NULL
);
CREATE INDEX records_end ON records(end_ms);
CREATE INDEX records_command_end ON records(command, end_ms);
CREATE INDEX records_remote_address_end ON records(remote_address, end_ms);
CREATE INDEX records_listen_port ON records(local_port, end_ms) WHERE kind = 'listen';
CREATE INDEX records_remote_name ON records(remote_name) WHERE remote_name IS NOT NULL;
CREATE INDEX records_dns_name ON records(dns_name) WHERE dns_name IS NOT NULL;
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

/**
 * Schema 1 → 2: every row kept as it is (so the hash chain still verifies);
 * the indexes that cost most per stored connection and served rarer
 * questions (pid, uid, port, kind) are dropped — those questions use the
 * time index, or scan — and listeners get a small partial index.
 */
const migrateFrom1 = `
DROP INDEX IF EXISTS records_pid_end;
DROP INDEX IF EXISTS records_uid_end;
DROP INDEX IF EXISTS records_remote_port_end;
DROP INDEX IF EXISTS records_local_port_end;
DROP INDEX IF EXISTS records_kind_end;
CREATE INDEX IF NOT EXISTS records_listen_port ON records(local_port, end_ms) WHERE kind = 'listen';
`;

export interface AuditLogOptions {
  /** Open an existing database only, for reading (query, summary, verify). Default false: create it if missing. */
  readOnly?: boolean;
  /** Remove records that ended longer ago than this (milliseconds). */
  retainMilliseconds?: number;
  /** Keep the database below about this many bytes by removing the oldest records. */
  maximumBytes?: number;
}

export interface VerifyResult {
  ok: boolean;
  /** Records checked. */
  records: number;
  /** The first record that fails (its sequence), null when all pass. */
  firstBad: number | null;
  /** What is wrong with it. */
  reason: string | null;
}

export function chainHash(previous: string, values: readonly Cell[]): string {
  // One call per row (no Hash object): the same digest as update(previous), update("\n"), update(content).
  return oneShotHash("sha256", `${previous}\n${JSON.stringify(values)}`, "hex");
}

/** The database file cannot be used (not ours, corrupted): a one-line UsageError; the file is left alone. */
function unusable(path: string, what: string): UsageError {
  return new UsageError("open audit log", `${path} ${what}`, "it is left as it is; give another --db path, or move the file away");
}

function isSqliteError(error: unknown): error is Error & { code: string } {
  return error instanceof Error && typeof (error as { code?: unknown }).code === "string" && (error as unknown as { code: string }).code.startsWith("SQLITE_");
}

/** Turns an SQLite error about a broken file into a UsageError; others into a NetbpfError. */
export function databaseError(path: string, operation: string, error: unknown): NetbpfError {
  if (error instanceof NetbpfError) return error;
  if (isSqliteError(error) && /^SQLITE_(CORRUPT|NOTADB)/.test(error.code)) return unusable(path, `is corrupted or not an SQLite database (${error.message.split("\n")[0]})`);
  if (isSqliteError(error) && /^SQLITE_(CANTOPEN|READONLY|PERM|AUTH)/.test(error.code)) return new UsageError(operation, `cannot write ${path} (${error.message.split("\n")[0]})`, "give a writable --db path");
  return new NetbpfError(operation, `${path}: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`);
}

/** The row of a record (without hash), in auditColumns order; `sequence` as given. */
export function rowValues(record: AuditRecord, sequence: number): Cell[] {
  const detail = record.dns ?? record.drop ?? record.loss ?? record.alert;
  // Built in column order at once (no intermediate object): this runs for every stored record.
  return [sequence, record.kind, record.start.getTime(), record.end.getTime(), ...recordColumnValues(record), record.dns?.queryName ?? null, detail === null ? null : JSON.stringify(detail)];
}

/** The record a stored row holds. */
export function recordFromRow(row: Record<string, unknown>): AuditRecord {
  const value = <T>(column: Column) => (row[column] ?? null) as T;
  const kind = value<AuditRecordKind>("kind");
  const hasProcess = ["pid", "uid", "command", "cgroup_id", "executable"].some((column) => row[column] !== null && row[column] !== undefined);
  const detail = value<string | null>("detail");
  const parsed = detail === null ? null : JSON.parse(detail);
  return {
    sequence: value<number>("sequence"),
    kind,
    start: new Date(value<number>("start_ms")),
    end: new Date(value<number>("end_ms")),
    process: hasProcess
      ? {
          pid: value("pid"), parentPid: value("parent_pid"), uid: value("uid"), command: value("command"), executable: value("executable"),
          cgroupId: value("cgroup_id"), cgroupPath: value("cgroup_path"), containerId: value("container_id"),
        }
      : null,
    flow: row.protocol !== null && row.protocol !== undefined
      ? {
          protocol: value("protocol"), family: value("family"), direction: value("direction"),
          localAddress: value("local_address"), localPort: value("local_port"), remoteAddress: value("remote_address"), remotePort: value("remote_port"),
          remoteName: value("remote_name"),
        }
      : null,
    bytesSent: value("bytes_sent"),
    bytesReceived: value("bytes_received"),
    packetsSent: value("packets_sent"),
    packetsReceived: value("packets_received"),
    closeReason: value("close_reason"),
    dns: kind === "dns" ? parsed : null,
    drop: kind === "drop" ? parsed : null,
    loss: kind === "loss" ? parsed : null,
    alert: kind === "alert" ? parsed : null,
  };
}

/** A record with every field at its empty value, to spread a partial one over. */
export function emptyAuditRecord(kind: AuditRecordKind, start: Date, end = start): AuditRecord {
  expectOneOf("empty audit record", "kind", kind, auditRecordKinds);
  expectDate("empty audit record", "start", start);
  expectDate("empty audit record", "end", end);
  return {
    sequence: 0, kind, start, end, process: null, flow: null, bytesSent: null, bytesReceived: null, packetsSent: null, packetsReceived: null,
    closeReason: null, dns: null, drop: null, loss: null, alert: null,
  };
}

export class AuditLog {
  readonly path: string;
  readonly readOnly: boolean;
  /** The better-sqlite3 connection (for queries beyond this API). */
  readonly database: BetterSqlite3.Database;
  readonly #options: AuditLogOptions;
  #head: { sequence: number; hash: string };
  /** Prepared once, at the first append. */
  #writeStatements: { insert: BetterSqlite3.Statement; setMeta: BetterSqlite3.Statement } | undefined;
  #closed = false;
  #writesSinceRetention = 0;

  private constructor(path: string, options: AuditLogOptions) {
    this.path = expectString("open audit log", "path", path);
    expectObject("open audit log", "options", options);
    if (options.readOnly !== undefined) expectBoolean("open audit log", "options.readOnly", options.readOnly);
    for (const [name, value] of [["retainMilliseconds", options.retainMilliseconds], ["maximumBytes", options.maximumBytes]] as const) {
      if (value !== undefined && !(typeof value === "number" && Number.isFinite(value) && value > 0)) throw argumentError("open audit log", `options.${name}`, "a positive number", value);
    }
    this.readOnly = options.readOnly ?? false;
    this.#options = options;
    const exists = existsSync(path);
    if (exists && !statSync(path).isFile()) throw new UsageError("open audit log", `${path} is not a file`, "give a file path with --db");
    if (!exists) {
      if (this.readOnly) throw new UsageError("open audit log", `there is no audit database at ${path}`, "record one with netbpf audit record, or give --db");
      try {
        accessSync(dirname(path), constants.W_OK);
      } catch {
        throw new UsageError("open audit log", `cannot create ${path} (its folder is missing or not writable)`, "give a writable --db path");
      }
    } else if (!this.readOnly) {
      try {
        accessSync(path, constants.W_OK);
      } catch {
        throw new UsageError("open audit log", `cannot write ${path}`, "give a writable --db path");
      }
    }
    if (exists && statSync(path).size > 0) {
      // A file that is not SQLite is refused before SQLite sees it.
      const header = Buffer.alloc(16);
      const { openSync, readSync, closeSync } = require("node:fs") as typeof import("node:fs");
      const descriptor = openSync(path, "r");
      try {
        readSync(descriptor, header, 0, 16, 0);
      } finally {
        closeSync(descriptor);
      }
      if (header.toString("latin1") !== "SQLite format 3\0") throw unusable(path, "is not an SQLite database");
    }
    const Database = require("better-sqlite3") as typeof BetterSqlite3;
    try {
      this.database = new Database(path, { fileMustExist: this.readOnly });
    } catch (error) {
      throw databaseError(path, "open audit log", error);
    }
    try {
      const database = this.database;
      const applicationId = database.pragma("application_id", { simple: true }) as number;
      const tables = database.prepare("SELECT count(*) AS n FROM sqlite_master").get() as { n: number };
      if (tables.n === 0 && !this.readOnly) {
        // New database: the page size and incremental auto-vacuum must be chosen before the first table.
        // 16 KiB pages: a stored row costs about a quarter less CPU than with SQLite's 4 KiB (fewer
        // page splits and B-tree levels; docs/audit.md, Storage).
        database.pragma(`page_size = ${auditPageSize}`);
        database.pragma("auto_vacuum = INCREMENTAL");
        database.pragma("journal_mode = WAL");
        database.transaction(() => {
          database.exec(schema);
          database.pragma(`application_id = ${auditApplicationId}`);
          database.pragma(`user_version = ${auditSchemaVersion}`);
          const put = database.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
          for (const [key, value] of [["anchor_sequence", "0"], ["anchor_hash", genesisHash], ["head_sequence", "0"], ["head_hash", genesisHash], ["created", new Date().toISOString()]]) put.run(key, value);
        })();
      } else if (applicationId !== auditApplicationId) {
        throw unusable(path, "is an SQLite database but not a netbpf audit log");
      } else {
        const version = database.pragma("user_version", { simple: true }) as number;
        if (!readableSchemaVersions.includes(version)) throw unusable(path, `has audit schema version ${version}, this netbpf reads ${readableSchemaVersions.join(" and ")}`);
        if (!this.readOnly) {
          const check = database.pragma("quick_check", { simple: true }) as string;
          if (check !== "ok") throw unusable(path, `is corrupted (SQLite quick_check: ${String(check).split("\n")[0]})`);
          database.pragma("journal_mode = WAL");
          if (version === 1) {
            database.transaction(() => {
              database.exec(migrateFrom1);
              database.pragma(`user_version = ${auditSchemaVersion}`);
            })();
          }
        }
      }
      database.pragma("synchronous = FULL");
      database.pragma("busy_timeout = 5000");
      this.#head = { sequence: Number(this.#meta("head_sequence")), hash: this.#meta("head_hash") };
    } catch (error) {
      try {
        this.database.close();
      } catch {
        // already failing
      }
      throw databaseError(path, "open audit log", error);
    }
  }

  /** Opens (and for writing, creates) the audit database at `path`. */
  static open(path: string, options: AuditLogOptions = {}): AuditLog {
    return new AuditLog(resolve(expectString("open audit log", "path", path)), options);
  }

  #meta(key: string): string {
    const row = this.database.prepare("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | undefined;
    if (row === undefined) throw unusable(this.path, `is corrupted (its meta table lacks ${key})`);
    return row.value;
  }

  /** The sequence of the newest record (0 when empty). */
  get lastSequence(): number {
    return this.#head.sequence;
  }

  /**
   * Whether a destination or listener (alert rules' "first time seen")
   * occurs in a record stored before `record` — this log is the history the
   * alert engine asks (SeenHistory). Only retained records count.
   */
  seenBefore(key: SeenKey, record: AuditRecord): boolean {
    expectSeenKey("look up a seen key", key);
    expectAuditRecord("look up a seen key", "record", record);
    const before = record.sequence > 0 ? record.sequence : Number.MAX_SAFE_INTEGER;
    const sql = key.kind === "listener"
      ? "SELECT 1 FROM records WHERE local_port = ? AND local_address = ? AND protocol = ? AND kind = 'listen' AND sequence < ? LIMIT 1"
      : "SELECT 1 FROM records WHERE remote_address = ? AND remote_port = ? AND protocol = ? AND direction = 'outbound' AND kind IN ('connection', 'udp') AND sequence < ? LIMIT 1";
    const statement = this.#seenStatements.get(key.kind) ?? this.database.prepare(sql);
    this.#seenStatements.set(key.kind, statement);
    const row = key.kind === "listener" ? statement.get(key.port, key.address, key.protocol, before) : statement.get(key.address, key.port, key.protocol, before);
    return row !== undefined;
  }

  readonly #seenStatements = new Map<SeenKey["kind"], BetterSqlite3.Statement>();

  /** Records stored now. */
  get count(): number {
    return (this.database.prepare("SELECT count(*) AS n FROM records").get() as { n: number }).n;
  }

  /**
   * Stores records in one transaction, chaining each to the one before;
   * assigns and returns them with their `sequence`. Applies retention every
   * few batches.
   */
  append(records: readonly AuditRecord[]): AuditRecord[] {
    expectArray("write audit log", "records", records);
    const stored: AuditRecord[] = [];
    if (records.length > 0) this.#write(records, (record) => stored.push(record));
    return stored;
  }

  /**
   * Stores records like append(), in one transaction, taking them from an
   * iterable one at a time and keeping none: for a writer that needs no
   * sequences back, records made as they are stored (a generator) are
   * garbage as soon as they are written, instead of a whole batch of them
   * living until its end. Returns how many were stored.
   */
  store(records: Iterable<AuditRecord>): number {
    expectIterable("write audit log", "records", records);
    return this.#write(records);
  }

  /** One transaction: each record chained to the one before; `onStored` gets each with its sequence. */
  #write(records: Iterable<AuditRecord>, onStored?: (record: AuditRecord) => void): number {
    if (this.readOnly) throw new UsageError("write audit log", "the log was opened read-only");
    if (this.#closed) throw new UsageError("write audit log", "the log is closed");
    const statements = (this.#writeStatements ??= this.#prepareWrites());
    let head = this.#head;
    let count = 0;
    try {
      this.database.transaction(() => {
        for (const record of records) {
          expectAuditRecord("write audit log", "records[]", record);
          const sequence = head.sequence + 1;
          const values = rowValues(record, sequence);
          const hash = chainHash(head.hash, values);
          values.push(hash);
          statements.insert.run(values);
          head = { sequence, hash };
          count++;
          onStored?.({ ...record, sequence });
        }
        if (count === 0) return;
        statements.setMeta.run(String(head.sequence), "head_sequence");
        statements.setMeta.run(head.hash, "head_hash");
      })();
    } catch (error) {
      throw databaseError(this.path, "write audit log", error);
    }
    if (count === 0) return 0;
    this.#head = head;
    if (++this.#writesSinceRetention >= 10) this.applyRetention();
    return count;
  }

  #prepareWrites(): { insert: BetterSqlite3.Statement; setMeta: BetterSqlite3.Statement } {
    return {
      insert: this.database.prepare(`INSERT INTO records (${auditColumns.join(", ")}, hash) VALUES (${auditColumns.map(() => "?").join(", ")}, ?)`),
      setMeta: this.database.prepare("UPDATE meta SET value = ? WHERE key = ?"),
    };
  }

  /** Removes records beyond the age and size limits (the oldest first); returns how many. */
  applyRetention(now = Date.now()): number {
    if (typeof now !== "number" || !Number.isFinite(now)) throw argumentError("apply audit retention", "now", "a time in milliseconds since the epoch", now);
    this.#writesSinceRetention = 0;
    let removed = 0;
    const retain = this.#options.retainMilliseconds;
    if (retain !== undefined) {
      const row = this.database.prepare("SELECT max(sequence) AS s FROM records WHERE end_ms < ?").get(now - retain) as { s: number | null };
      if (row.s !== null) removed += this.removeThrough(row.s);
    }
    const maximum = this.#options.maximumBytes;
    if (maximum !== undefined) {
      for (let round = 0; round < 20 && this.usedBytes() > maximum; round++) {
        const bounds = this.database.prepare("SELECT min(sequence) AS low, max(sequence) AS high FROM records").get() as { low: number | null; high: number | null };
        if (bounds.low === null || bounds.high === null) break;
        // A tenth of what is stored per round (at least one record).
        removed += this.removeThrough(bounds.low + Math.max(0, Math.floor((bounds.high - bounds.low) / 10)));
      }
    }
    return removed;
  }

  /** Bytes the database's pages in use take (the file may hold free pages besides). */
  usedBytes(): number {
    const pages = this.database.pragma("page_count", { simple: true }) as number;
    const free = this.database.pragma("freelist_count", { simple: true }) as number;
    const size = this.database.pragma("page_size", { simple: true }) as number;
    return (pages - free) * size;
  }

  /** Removes every record up to `sequence` (inclusive) and moves the anchor to it. */
  removeThrough(sequence: number): number {
    expectInteger("remove audit records", "sequence", sequence, 0);
    const last = this.database.prepare("SELECT sequence, hash FROM records WHERE sequence <= ? ORDER BY sequence DESC LIMIT 1").get(sequence) as { sequence: number; hash: string } | undefined;
    if (last === undefined) return 0;
    let changes = 0;
    this.database.transaction(() => {
      changes = this.database.prepare("DELETE FROM records WHERE sequence <= ?").run(last.sequence).changes;
      const setMeta = this.database.prepare("UPDATE meta SET value = ? WHERE key = ?");
      setMeta.run(String(last.sequence), "anchor_sequence");
      setMeta.run(last.hash, "anchor_hash");
    })();
    this.database.pragma("incremental_vacuum");
    return changes;
  }

  /** Rows in sequence order from `after` (exclusive), as stored. */
  rows(after = 0): Generator<AuditRow> {
    return this.#rows(expectInteger("read audit rows", "after", after, 0));
  }

  *#rows(after: number): Generator<AuditRow> {
    const statement = this.database.prepare(`SELECT ${auditColumns.join(", ")}, hash FROM records WHERE sequence > ? ORDER BY sequence`);
    for (const row of statement.iterate(after)) yield row as AuditRow;
  }

  /** Checks the whole chain from the anchor to the head; names the first bad record. */
  verify(): VerifyResult {
    try {
      let previous = { sequence: Number(this.#meta("anchor_sequence")), hash: this.#meta("anchor_hash") };
      const head = { sequence: Number(this.#meta("head_sequence")), hash: this.#meta("head_hash") };
      let records = 0;
      for (const row of this.#rows(0)) {
        records++;
        const sequence = row.sequence as number;
        if (sequence !== previous.sequence + 1) {
          return { ok: false, records, firstBad: sequence, reason: sequence <= previous.sequence ? `record ${sequence} lies before the anchor (record ${previous.sequence})` : `records ${previous.sequence + 1}-${sequence - 1} are missing` };
        }
        const values = auditColumns.map((column) => row[column]);
        if (chainHash(previous.hash, values) !== row.hash) {
          return { ok: false, records, firstBad: sequence, reason: `record ${sequence} does not match its hash (changed, or the chain before it was)` };
        }
        previous = { sequence, hash: row.hash };
      }
      if (previous.sequence !== head.sequence || previous.hash !== head.hash) {
        const missing = previous.sequence + 1;
        return { ok: false, records, firstBad: missing, reason: previous.sequence < head.sequence ? `records ${missing}-${head.sequence} are missing (the log was cut off)` : `the head in meta (record ${head.sequence}) does not match the last record` };
      }
      return { ok: true, records, firstBad: null, reason: null };
    } catch (error) {
      throw databaseError(this.path, "verify audit log", error);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (!this.readOnly) this.applyRetention();
    } catch {
      // closing matters more
    }
    this.database.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
