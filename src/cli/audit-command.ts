/**
 * `netbpf audit record|query|summary|verify`: thin shells over AuditRecorder,
 * AuditLog, queryAuditLog and summarizeAuditLog (src/audit). Documented in
 * docs/audit.md.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Command } from "commander";
import { AuditLog } from "../audit/audit-log.js";
import { queryAuditLog, summarizeAuditLog, type AuditQuery } from "../audit/audit-query.js";
import { auditRecordKinds, type AuditRecord, type AuditRecordKind } from "../audit/audit-record.js";
import { AuditRecorder } from "../audit/audit-recorder.js";
import type { AuditSink } from "../audit/audit-sink.js";
import { zeekConnFooter, zeekConnHeader, zeekConnLine } from "../audit/zeek-conn-log.js";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { addAuditSinkOptions, buildAuditSinks } from "./audit-sink-options.js";
import { registerAuditRulesCommand } from "./audit-rules-command.js";
import { parseDuration } from "./duration-option.js";
import { renderTable, toJson, writeLine } from "./output.js";

export const defaultAuditDatabase = "/var/lib/netbpf/audit.db";

const sizeUnits: Record<string, number> = { "": 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4 };

/** "1GB", "500MB", "64MiB", "100000" (bytes). */
export function parseSize(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?$/i.exec(text.trim());
  const bytes = match ? Number(match[1]) * sizeUnits[(match[2] ?? "").toLowerCase()]! : Number.NaN;
  if (!(Number.isFinite(bytes) && bytes >= 1)) throw new UsageError(`option ${option}`, `"${text}" is not a size`, "write e.g. 1GB, 500MB or 64MiB");
  return Math.round(bytes);
}

/** A time on the command line: a duration before now ("1h", "30m") or a date ("2026-12-04", "2026-12-04T10:00:00Z"). */
export function parseTime(text: string, option: string, now = Date.now()): Date {
  const trimmed = text.trim();
  if (/^\d+(?:\.\d+)?(ms|s|m|h|d)$/.test(trimmed)) return new Date(now - parseDuration(trimmed, option));
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    const time = Date.parse(trimmed);
    if (!Number.isNaN(time)) return new Date(time);
  }
  throw new UsageError(`option ${option}`, `"${text}" is neither a duration before now nor a date`, "write e.g. 1h, 30m, 7d, 2026-12-04 or 2026-12-04T10:00:00Z");
}

function integer(text: string | undefined, option: string, minimum: number, maximum: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim()) || Number(text) < minimum || Number(text) > maximum) throw new UsageError(`option ${option}`, `needs an integer ${minimum}-${maximum}, got "${text}"`);
  return Number(text);
}

function recordKinds(texts: string[] | undefined): AuditRecordKind[] | undefined {
  for (const text of texts ?? []) {
    if (!(auditRecordKinds as readonly string[]).includes(text)) throw new UsageError("option --kind", `unknown record kind "${text}"`, `kinds: ${auditRecordKinds.join(", ")}`);
  }
  return texts as AuditRecordKind[] | undefined;
}

interface RecordOptions {
  db: string;
  retain?: string;
  maxSize?: string;
  interval: string;
  duration?: string;
  udp: boolean;
  dns: boolean;
  drops: boolean;
  [sinkOption: string]: unknown;
}

interface QueryOptions {
  db: string;
  since?: string;
  until?: string;
  kind?: string[];
  process?: string;
  pid?: string;
  uid?: string;
  port?: string;
  remote?: string;
  limit?: string;
  json?: boolean;
  zeek?: boolean;
}

const repeatable = (value: string, previous: string[] = []) => [...previous, value];

function openForWriting(path: string, options: { retain?: string; maxSize?: string }): AuditLog {
  const retainMilliseconds = options.retain === undefined ? undefined : parseDuration(options.retain, "--retain", "d");
  const maximumBytes = options.maxSize === undefined ? undefined : parseSize(options.maxSize, "--max-size");
  if (path === defaultAuditDatabase) {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch {
      // reported by AuditLog.open as an unwritable path
    }
  }
  return AuditLog.open(path, { retainMilliseconds, maximumBytes });
}

function endpoint(address: string | undefined, port: number | undefined): string {
  if (address === undefined) return "-";
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

function tableRow(record: AuditRecord): string[] {
  const time = record.start.toISOString().replace("T", " ").replace("Z", "");
  const process = record.process;
  const flow = record.flow;
  let what: string;
  if (flow) what = `${flow.protocol} ${flow.direction ?? "?"} ${endpoint(flow.localAddress, flow.localPort)} ${endpoint(flow.remoteAddress, flow.remotePort)}${flow.remoteName ? ` (${flow.remoteName})` : ""}`;
  else if (record.dns) what = `${record.dns.queryType} ${record.dns.queryName} → ${record.dns.responseCode ?? "no answer"} ${record.dns.answers.join(",")}`.trimEnd();
  else if (record.drop) what = `${record.drop.source} ${record.drop.rule} from ${record.drop.sourceAddress}: ${record.drop.packets} packets`;
  else if (record.loss) what = `${record.loss.count} ${record.loss.what} lost: ${record.loss.reason}`;
  else if (record.alert) what = `${record.alert.severity} ${record.alert.rule}: ${record.alert.message}`;
  else what = "";
  return [
    String(record.sequence), time, record.kind,
    process?.pid === null || process === null ? "-" : String(process.pid),
    process?.command ?? "-",
    process?.uid === null || process === null ? "-" : String(process.uid),
    what,
    record.bytesSent === null ? "-" : String(record.bytesSent),
    record.bytesReceived === null ? "-" : String(record.bytesReceived),
    record.kind === "connection" || record.kind === "udp" ? ((record.end.getTime() - record.start.getTime()) / 1000).toFixed(3) : "-",
    record.closeReason ?? "-",
  ];
}

export function registerAuditCommand(program: Command): void {
  const audit = program
    .command("audit")
    .description("a durable, hash-chained record of who talked to whom (TCP, UDP, DNS, drops) in SQLite: record, query, summary, verify");

  const record = audit
    .command("record")
    .description("record TCP connections, listeners, UDP flows, DNS and firewall drops into the audit database until stopped (Ctrl-C)")
    .option("--db <path>", "the audit database (SQLite)", defaultAuditDatabase)
    .option("--retain <duration>", "remove records older than this (e.g. 30d; a bare number is days)")
    .option("--max-size <size>", "keep the database below this size by removing the oldest records (e.g. 1GB)")
    .option("--interval <duration>", "how often records are stored (one transaction) and UDP and drop counters read", "1s")
    .option("--duration <duration>", "stop after this long")
    .option("--no-udp", "do not record UDP flows")
    .option("--no-dns", "do not record DNS on port 53")
    .option("--no-drops", "do not record firewall and rate-limit drops");
  // Sinks (alert rules, JSON lines, ClickHouse, …) add their options through src/cli/audit-sink-options.ts.
  addAuditSinkOptions(record);
  record.action(async (options: RecordOptions) => {
    const interval = parseDuration(options.interval, "--interval");
    const duration = options.duration === undefined ? undefined : parseDuration(options.duration, "--duration");
    // Everything that can be wrong with the input is checked before anything is attached.
    const log = openForWriting(options.db, options);
    const sinks: AuditSink[] = [];
    let recorder: AuditRecorder | undefined;
    try {
      sinks.push(...await buildAuditSinks(options as unknown as Record<string, unknown>, { log }));
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      const timer = duration !== undefined ? setTimeout(stop, duration) : undefined;
      recorder = AuditRecorder.start({ log, sinks, interval, udp: options.udp, dns: options.dns, drops: options.drops, signal: controller.signal });
      process.stderr.write(`netbpf: audit record: recording to ${log.path} (stop with Ctrl-C)\n`);
      await recorder.done;
      if (timer) clearTimeout(timer);
      process.stderr.write(`netbpf: audit record: stored ${recorder.statistics.stored} records in ${recorder.statistics.batches} batches, ${recorder.statistics.lost} events lost\n`);
    } catch (error) {
      for (const sink of sinks) await sink.close().catch(() => undefined);
      throw error;
    } finally {
      log.close();
    }
  });

  registerAuditRulesCommand(audit);

  audit
    .command("query")
    .description("records matching a period, process, user, port, remote (address, CIDR, DNS name) and a filter expression")
    .argument("[expression...]", "a tcpdump filter expression over the flow's 5-tuple (either direction)")
    .option("--db <path>", "the audit database", defaultAuditDatabase)
    .option("--since <time>", "records that ended after this: a duration before now (1h) or a date (ISO 8601)")
    .option("--until <time>", "records that began before this")
    .option("--kind <kind>", "only this kind (connection, listen, udp, dns, drop, loss, alert); repeatable", repeatable)
    .option("--process <name>", "command name, or executable path (with a /)")
    .option("--pid <pid>", "process id")
    .option("--uid <uid>", "user id")
    .option("--port <port>", "local or remote port")
    .option("--remote <address|cidr|name>", "remote address, CIDR prefix, or DNS name seen in answers")
    .option("--limit <n>", "at most this many records (the newest)")
    .option("--json", "one JSON object per record (AuditRecord fields)")
    .option("--zeek", "Zeek conn.log TSV (connection and UDP records)")
    .action((words: string[], options: QueryOptions) => {
      if (options.json && options.zeek) throw new UsageError("audit query", "--json and --zeek are two output formats", "choose one");
      const query: AuditQuery = {
        since: options.since === undefined ? undefined : parseTime(options.since, "--since"),
        until: options.until === undefined ? undefined : parseTime(options.until, "--until"),
        kinds: recordKinds(options.kind),
        process: options.process,
        pid: integer(options.pid, "--pid", 1, 0x7fffffff),
        uid: integer(options.uid, "--uid", 0, 0xffffffff),
        port: integer(options.port, "--port", 1, 65535),
        remote: options.remote,
        expression: words.length > 0 ? words.join(" ") : undefined,
        limit: integer(options.limit, "--limit", 1, Number.MAX_SAFE_INTEGER),
        newestFirst: options.limit !== undefined,
      };
      using log = AuditLog.open(options.db, { readOnly: true });
      const records = queryAuditLog(log, query);
      if (query.newestFirst) records.reverse();
      if (options.json) {
        for (const record of records) writeLine(toJson(record));
      } else if (options.zeek) {
        writeLine(zeekConnHeader());
        for (const record of records) {
          const line = zeekConnLine(record);
          if (line !== undefined) writeLine(line);
        }
        writeLine(zeekConnFooter());
      } else if (records.length === 0) {
        writeLine("no records");
      } else {
        writeLine(renderTable(["SEQ", "START", "KIND", "PID", "COMMAND", "UID", "WHAT", "SENT", "RECEIVED", "SECONDS", "CLOSE"], records.map(tableRow)));
      }
    });

  audit
    .command("summary")
    .description("top talkers, new destinations and new listeners over a period")
    .option("--db <path>", "the audit database", defaultAuditDatabase)
    .option("--since <time>", "start of the period: a duration before now (default 24h) or a date", "24h")
    .option("--until <time>", "end of the period (default now)")
    .option("--top <n>", "how many top talkers", "10")
    .option("--json", "one JSON object")
    .action((options: { db: string; since: string; until?: string; top: string; json?: boolean }) => {
      const since = parseTime(options.since, "--since");
      const until = options.until === undefined ? undefined : parseTime(options.until, "--until");
      const top = integer(options.top, "--top", 1, 10000)!;
      using log = AuditLog.open(options.db, { readOnly: true });
      const summary = summarizeAuditLog(log, { since, until, top });
      if (options.json) {
        writeLine(toJson(summary));
        return;
      }
      writeLine(`${summary.records} records from ${since.toISOString()} to ${(until ?? new Date()).toISOString()}`);
      writeLine("\nTop talkers");
      writeLine(summary.topTalkers.length === 0 ? "  none" : renderTable(["COMMAND", "UID", "FLOWS", "SENT", "RECEIVED", "EXECUTABLE"], summary.topTalkers.map((talker) => [talker.command ?? "-", talker.uid ?? "-", talker.connections, talker.bytesSent, talker.bytesReceived, talker.executable ?? "-"])));
      writeLine("\nNew destinations");
      writeLine(summary.newDestinations.length === 0 ? "  none" : renderTable(["FIRST SEEN", "PROTO", "REMOTE", "NAME", "COMMAND"], summary.newDestinations.map((destination) => [destination.firstSeen.toISOString(), destination.protocol, endpoint(destination.remoteAddress, destination.remotePort), destination.remoteName ?? "-", destination.command ?? "-"])));
      writeLine("\nNew listeners");
      writeLine(summary.newListeners.length === 0 ? "  none" : renderTable(["FIRST SEEN", "LOCAL", "PID", "COMMAND"], summary.newListeners.map((listener) => [listener.firstSeen.toISOString(), endpoint(listener.localAddress, listener.localPort), listener.pid ?? "-", listener.command ?? "-"])));
    });

  audit
    .command("verify")
    .description("check the hash chain: every record unchanged, none inserted or removed; names the first bad record")
    .option("--db <path>", "the audit database", defaultAuditDatabase)
    .option("--json", "the result as one JSON object")
    .action((options: { db: string; json?: boolean }) => {
      using log = AuditLog.open(options.db, { readOnly: true });
      const result = log.verify();
      if (options.json) writeLine(toJson(result));
      if (!result.ok) {
        throw new NetbpfError("audit verify", `${log.path}: record ${result.firstBad} is bad: ${result.reason}`, "the log was changed after it was written; keep this file as evidence");
      }
      if (!options.json) writeLine(`ok: ${result.records} records, chain intact (last record ${log.lastSequence})`);
    });
}
