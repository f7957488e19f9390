/**
 * Questions to an AuditLog: which records in a period match a process, pid,
 * user, port, remote (address, CIDR or DNS name seen) and a tcpdump filter
 * expression over the flow's 5-tuple. The indexed conditions become SQL; the
 * CIDR and the expression are checked on the rows SQL returns.
 *
 * A flow matches an expression when a packet of it in either direction
 * would: the flow is turned into two synthetic raw-IP packets (local →
 * remote and remote → local, with its protocol and ports, no payload) run
 * through the filter compiler's reference evaluator (src/filter).
 */
import { parseIpv4, parseIpv6 } from "../pcap/address-text.js";
import { expectArray, expectDate, expectInstance, expectInteger, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import { AuditLog, auditColumns, databaseError, recordFromRow } from "./audit-log.js";
import { compileFlowFilter } from "./flow-filter.js";
import { auditRecordKinds, type AuditRecord, type AuditRecordKind } from "./audit-record.js";

export interface AuditQuery {
  /** Records that ended at or after this time. */
  since?: Date;
  /** Records that began at or before this time. */
  until?: Date;
  kinds?: readonly AuditRecordKind[];
  /** A command name (comm) or, with a "/", an executable path. */
  process?: string;
  pid?: number;
  uid?: number;
  /** Local or remote port. */
  port?: number;
  /** An address, a CIDR prefix, or a DNS name (matched against names seen in DNS answers). */
  remote?: string;
  /** A tcpdump filter expression over the flow (records without a flow never match). */
  expression?: string;
  /** At most this many records (the newest ones when `newestFirst`). */
  limit?: number;
  newestFirst?: boolean;
}

const operation = "audit query";

interface Prefix {
  bytes: Buffer;
  length: number;
}

function parseAddress(text: string): Buffer | undefined {
  return parseIpv4(text) ?? parseIpv6(text);
}

function parsePrefix(text: string): Prefix | undefined {
  const slash = text.indexOf("/");
  if (slash < 0) return undefined;
  const bytes = parseAddress(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  if (bytes === undefined || !/^\d{1,3}$/.test(lengthText) || Number(lengthText) > bytes.length * 8) throw new UsageError(operation, `--remote ${JSON.stringify(text)} is not a valid CIDR prefix`, "write e.g. 10.0.0.0/8 or 2001:db8::/32");
  return { bytes, length: Number(lengthText) };
}

/** Whether an address (text; IPv4-mapped IPv6 counts as IPv4) lies in a prefix. */
export function addressInPrefix(address: string, prefix: Prefix): boolean {
  let bytes = parseAddress(address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address);
  if (bytes === undefined || bytes.length !== prefix.bytes.length) return false;
  for (let bit = 0; bit < prefix.length; bit++) {
    const mask = 0x80 >> (bit % 8);
    if ((bytes[bit >> 3]! & mask) !== (prefix.bytes[bit >> 3]! & mask)) return false;
  }
  bytes = undefined;
  return true;
}

function checkQuery(query: AuditQuery): void {
  expectObject(operation, "query", query);
  const integer = (name: "pid" | "uid" | "port" | "limit", minimum: number, maximum: number) => {
    if (query[name] !== undefined) expectInteger(operation, `query.${name}`, query[name], minimum, maximum);
  };
  integer("pid", 0, 0x7fffffff);
  integer("uid", 0, 0xffffffff);
  integer("port", 1, 65535);
  integer("limit", 0, Number.MAX_SAFE_INTEGER);
  for (const name of ["since", "until"] as const) if (query[name] !== undefined) expectDate(operation, `query.${name}`, query[name]);
  for (const name of ["process", "remote", "expression"] as const) if (query[name] !== undefined) expectString(operation, `query.${name}`, query[name]);
  for (const kind of expectArray(operation, "query.kinds", query.kinds, true)) expectOneOf(operation, "query.kinds[]", kind, auditRecordKinds);
}

/** Addresses that DNS answers recorded in the log gave for `name`. */
export function addressesOfName(log: AuditLog, name: string): string[] {
  const addresses = new Set<string>();
  const statement = log.database.prepare("SELECT detail FROM records WHERE dns_name = ? AND kind = 'dns'");
  for (const row of statement.iterate(name.toLowerCase().replace(/\.$/, "")) as Iterable<{ detail: string }>) {
    for (const answer of (JSON.parse(row.detail) as { answers?: string[] }).answers ?? []) addresses.add(answer);
  }
  return [...addresses];
}

/** The records that answer a query, oldest first (or newest first). */
export function queryAuditLog(log: AuditLog, query: AuditQuery = {}): AuditRecord[] {
  expectInstance(operation, "log", log, AuditLog, "an AuditLog (from AuditLog.open)");
  checkQuery(query);
  const where: string[] = [];
  const parameters: (string | number)[] = [];
  if (query.since) {
    where.push("end_ms >= ?");
    parameters.push(query.since.getTime());
  }
  if (query.until) {
    where.push("start_ms <= ?");
    parameters.push(query.until.getTime());
  }
  if (query.kinds && query.kinds.length > 0) {
    where.push(`kind IN (${query.kinds.map(() => "?").join(", ")})`);
    parameters.push(...query.kinds);
  }
  if (query.process !== undefined) {
    where.push(query.process.includes("/") ? "executable = ?" : "command = ?");
    parameters.push(query.process);
  }
  if (query.pid !== undefined) {
    where.push("pid = ?");
    parameters.push(query.pid);
  }
  if (query.uid !== undefined) {
    where.push("uid = ?");
    parameters.push(query.uid);
  }
  if (query.port !== undefined) {
    where.push("(local_port = ? OR remote_port = ?)");
    parameters.push(query.port, query.port);
  }
  let prefix: Prefix | undefined;
  if (query.remote !== undefined) {
    const remote = query.remote.trim();
    prefix = parsePrefix(remote);
    if (prefix === undefined) {
      if (parseAddress(remote) !== undefined) {
        where.push("(remote_address = ? OR remote_address = ?)");
        parameters.push(remote, `::ffff:${remote}`);
      } else {
        const name = remote.toLowerCase().replace(/\.$/, "");
        if (!/^[a-z0-9_*.-]+$/.test(name)) throw new UsageError(operation, `--remote ${JSON.stringify(remote)} is not an address, CIDR prefix or DNS name`);
        const addresses = addressesOfName(log, name);
        const alternatives = ["remote_name = ?", "dns_name = ?"];
        parameters.push(name, name);
        if (addresses.length > 0) {
          alternatives.push(`remote_address IN (${addresses.map(() => "?").join(", ")})`);
          parameters.push(...addresses);
        }
        where.push(`(${alternatives.join(" OR ")})`);
      }
    }
  }
  const flowFilter = query.expression !== undefined && query.expression.trim() !== "" ? compileFlowFilter(query.expression, { directions: "either" }) : undefined;
  const postFilter = prefix !== undefined || flowFilter !== undefined;
  const sql = `SELECT ${auditColumns.join(", ")} FROM records${where.length > 0 ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY sequence ${query.newestFirst ? "DESC" : "ASC"}${query.limit !== undefined && !postFilter ? ` LIMIT ${query.limit}` : ""}`;
  const records: AuditRecord[] = [];
  try {
    for (const row of log.database.prepare(sql).iterate(...parameters) as Iterable<Record<string, unknown>>) {
      const record = recordFromRow(row);
      if (prefix !== undefined) {
        const address = record.flow?.remoteAddress ?? record.dns?.serverAddress ?? record.drop?.sourceAddress;
        if (address === undefined || !addressInPrefix(address, prefix)) continue;
      }
      if (flowFilter !== undefined && !flowFilter.matches(record)) continue;
      records.push(record);
      if (query.limit !== undefined && records.length >= query.limit) break;
    }
  } catch (error) {
    throw databaseError(log.path, operation, error);
  }
  return records;
}

export interface AuditSummary {
  since: Date | null;
  until: Date | null;
  records: number;
  /** Processes by bytes (sent + received) over connections and UDP flows. */
  topTalkers: { command: string | null; executable: string | null; uid: number | null; connections: number; bytesSent: number; bytesReceived: number }[];
  /** Remote address:port (with name) first seen in the period: never before it in the log. */
  newDestinations: { remoteAddress: string; remotePort: number; protocol: string; remoteName: string | null; firstSeen: Date; command: string | null }[];
  /** Listening sockets first seen in the period. */
  newListeners: { localAddress: string; localPort: number; command: string | null; pid: number | null; firstSeen: Date }[];
}

/** Top talkers, new destinations and new listeners in a period. */
export function summarizeAuditLog(log: AuditLog, options: { since?: Date; until?: Date; top?: number } = {}): AuditSummary {
  expectInstance("audit summary", "log", log, AuditLog, "an AuditLog (from AuditLog.open)");
  expectObject("audit summary", "options", options);
  for (const name of ["since", "until"] as const) if (options[name] !== undefined) expectDate("audit summary", `options.${name}`, options[name]);
  if (options.top !== undefined) expectInteger("audit summary", "options.top", options.top, 0);
  const since = options.since?.getTime() ?? 0;
  const until = options.until?.getTime() ?? Number.MAX_SAFE_INTEGER;
  const top = options.top ?? 10;
  try {
    const database = log.database;
    const records = (database.prepare("SELECT count(*) AS n FROM records WHERE end_ms >= ? AND start_ms <= ?").get(since, until) as { n: number }).n;
    const topTalkers = database.prepare(`
      SELECT command, executable, uid, count(*) AS connections, coalesce(sum(bytes_sent), 0) AS bytesSent, coalesce(sum(bytes_received), 0) AS bytesReceived
      FROM records WHERE kind IN ('connection', 'udp') AND end_ms >= ? AND start_ms <= ?
      GROUP BY command, executable, uid ORDER BY bytesSent + bytesReceived DESC LIMIT ?`).all(since, until, top) as AuditSummary["topTalkers"];
    const destinations = database.prepare(`
      SELECT remote_address AS remoteAddress, remote_port AS remotePort, protocol, max(remote_name) AS remoteName, min(start_ms) AS first, command
      FROM records WHERE kind IN ('connection', 'udp') AND direction IS NOT 'inbound' AND end_ms >= ? AND start_ms <= ?
        AND NOT EXISTS (SELECT 1 FROM records AS earlier WHERE earlier.remote_address = records.remote_address AND earlier.remote_port = records.remote_port
          AND earlier.kind IN ('connection', 'udp') AND earlier.end_ms < ?)
      GROUP BY remote_address, remote_port, protocol ORDER BY first`).all(since, until, since) as (Omit<AuditSummary["newDestinations"][number], "firstSeen"> & { first: number })[];
    const listeners = database.prepare(`
      SELECT local_address AS localAddress, local_port AS localPort, command, pid, min(start_ms) AS first
      FROM records WHERE kind = 'listen' AND end_ms >= ? AND start_ms <= ?
        AND NOT EXISTS (SELECT 1 FROM records AS earlier WHERE earlier.kind = 'listen' AND earlier.local_port = records.local_port AND earlier.end_ms < ?)
      GROUP BY local_address, local_port ORDER BY first`).all(since, until, since) as (Omit<AuditSummary["newListeners"][number], "firstSeen"> & { first: number })[];
    return {
      since: options.since ?? null,
      until: options.until ?? null,
      records,
      topTalkers,
      newDestinations: destinations.map(({ first, ...rest }) => ({ ...rest, firstSeen: new Date(first) })),
      newListeners: listeners.map(({ first, ...rest }) => ({ ...rest, firstSeen: new Date(first) })),
    };
  } catch (error) {
    throw databaseError(log.path, "audit summary", error);
  }
}
