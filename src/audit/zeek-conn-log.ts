/**
 * Audit records as a Zeek conn.log (the TSV form, with the #-header lines
 * Zeek writes), so tools that read Zeek logs (zeek-cut, RITA, SIEM parsers)
 * read connection and UDP records. Other kinds have no conn.log line.
 *
 * Mapping: the originator (id.orig_*) is the side that opened the flow
 * (this host for "outbound", the peer for "inbound", this host when
 * unknown); orig_bytes / resp_bytes are payload bytes of each side;
 * local_orig / local_resp say which side is this host; conn_state follows
 * Zeek's codes as far as the record tells (SF normal close, RSTO / RSTR
 * reset by originator / responder, S1 still open, OTH unknown); uid is "C"
 * followed by the record's sequence in base 62, so it is stable and unique
 * within one log.
 */
import { expectDate } from "../sys/argument-checks.js";
import { expectAuditRecord, type AuditRecord } from "./audit-record.js";

export const zeekConnFields = [
  "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration", "orig_bytes", "resp_bytes",
  "conn_state", "local_orig", "local_resp", "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents",
] as const;

export const zeekConnTypes = [
  "time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "count", "count",
  "string", "bool", "bool", "count", "string", "count", "count", "count", "count", "set[string]",
] as const;

const unset = "-";

function zeekTime(date: Date): string {
  const pad = (value: number) => String(value).padStart(2, "0");
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}-${pad(date.getUTCHours())}-${pad(date.getUTCMinutes())}-${pad(date.getUTCSeconds())}`;
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

export function zeekUid(sequence: number): string {
  let text = "";
  let value = Math.max(0, Math.floor(sequence));
  do {
    text = base62[value % 62] + text;
    value = Math.floor(value / 62);
  } while (value > 0);
  return `C${text}`;
}

/** The header lines, up to and including #types. */
export function zeekConnHeader(opened = new Date()): string {
  expectDate("Zeek conn.log header", "opened", opened);
  return [
    "#separator \\x09",
    "#set_separator\t,",
    "#empty_field\t(empty)",
    "#unset_field\t-",
    "#path\tconn",
    `#open\t${zeekTime(opened)}`,
    `#fields\t${zeekConnFields.join("\t")}`,
    `#types\t${zeekConnTypes.join("\t")}`,
  ].join("\n");
}

export function zeekConnFooter(closed = new Date()): string {
  expectDate("Zeek conn.log footer", "closed", closed);
  return `#close\t${zeekTime(closed)}`;
}

function count(value: number | null): string {
  return value === null ? unset : String(Math.round(value));
}

function connectionState(record: AuditRecord, originIsLocal: boolean): string {
  if (record.flow?.protocol === "udp") return record.packetsReceived && record.packetsSent ? "SF" : "S0";
  switch (record.closeReason) {
    case "fin":
      return "SF";
    case "open":
      return "S1";
    case "reset sent":
      return originIsLocal ? "RSTO" : "RSTR";
    case "reset received":
      return originIsLocal ? "RSTR" : "RSTO";
    default:
      return "OTH";
  }
}

/** One conn.log line, or undefined for records without a flow. */
export function zeekConnLine(record: AuditRecord): string | undefined {
  expectAuditRecord("Zeek conn.log line", "record", record);
  const flow = record.flow;
  if (flow === null || (record.kind !== "connection" && record.kind !== "udp")) return undefined;
  const originIsLocal = flow.direction !== "inbound";
  const [origin, responder] = originIsLocal
    ? [[flow.localAddress, flow.localPort], [flow.remoteAddress, flow.remotePort]]
    : [[flow.remoteAddress, flow.remotePort], [flow.localAddress, flow.localPort]];
  const [originBytes, responderBytes] = originIsLocal ? [record.bytesSent, record.bytesReceived] : [record.bytesReceived, record.bytesSent];
  const [originPackets, responderPackets] = originIsLocal ? [record.packetsSent, record.packetsReceived] : [record.packetsReceived, record.packetsSent];
  const service = flow.remotePort === 53 || flow.localPort === 53 ? "dns" : unset;
  const cells = [
    (record.start.getTime() / 1000).toFixed(6),
    zeekUid(record.sequence),
    String(origin[0]), String(origin[1]), String(responder[0]), String(responder[1]),
    flow.protocol,
    service,
    ((record.end.getTime() - record.start.getTime()) / 1000).toFixed(6),
    count(originBytes),
    count(responderBytes),
    connectionState(record, originIsLocal),
    flow.direction === null ? unset : originIsLocal ? "T" : "F",
    flow.direction === null ? unset : originIsLocal ? "F" : "T",
    "0",
    unset,
    count(originPackets),
    unset,
    count(responderPackets),
    unset,
    unset,
  ];
  return cells.join("\t");
}
