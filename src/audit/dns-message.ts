/**
 * A DNS message (RFC 1035) as the audit needs it: id, whether it is a
 * response, response code, the first question, and the A / AAAA answer
 * addresses. Pure; bounded work on any input (names follow at most 32
 * compression pointers, at most 64 answers are read); malformed input gives
 * undefined, never an exception.
 */
import { formatIpv4, formatIpv6 } from "../pcap/address-text.js";
import { expectBytes } from "../sys/argument-checks.js";

export interface DnsMessage {
  id: number;
  response: boolean;
  responseCode: string;
  queryName: string;
  queryType: string;
  answers: string[];
}

const typeNames: Record<number, string> = { 1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 35: "NAPTR", 43: "DS", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS", 255: "ANY" };
const responseCodes = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"];

export function dnsTypeName(type: number): string {
  return typeNames[type] ?? `TYPE${type}`;
}

/** Reads a name at `offset`; returns it (lower case, no trailing dot) and the offset after it in the message (not after pointer targets). */
function readName(data: Uint8Array, offset: number): { name: string; next: number } | undefined {
  const labels: string[] = [];
  let position = offset;
  let next = -1;
  for (let jumps = 0; jumps <= 32; ) {
    if (position >= data.length) return undefined;
    const length = data[position]!;
    if (length === 0) {
      if (next < 0) next = position + 1;
      return { name: labels.join(".").toLowerCase(), next };
    }
    if ((length & 0xc0) === 0xc0) {
      if (position + 1 >= data.length) return undefined;
      if (next < 0) next = position + 2;
      position = ((length & 0x3f) << 8) | data[position + 1]!;
      jumps++;
      continue;
    }
    if ((length & 0xc0) !== 0 || position + 1 + length > data.length) return undefined;
    labels.push(Buffer.from(data.subarray(position + 1, position + 1 + length)).toString("latin1"));
    if (labels.length > 127) return undefined;
    position += 1 + length;
  }
  return undefined;
}

/** The message in `data` (a Buffer or Uint8Array), or undefined when it is not a standard DNS query or response. */
export function parseDnsMessage(data: Uint8Array): DnsMessage | undefined {
  return readDnsMessage(expectBytes("parse DNS message", "data", data));
}

/** parseDnsMessage without the argument check, for datagrams read from the kernel. */
export function readDnsMessage(data: Uint8Array): DnsMessage | undefined {
  if (data.length < 12) return undefined;
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const id = view.readUInt16BE(0);
  const flags = view.readUInt16BE(2);
  const questions = view.readUInt16BE(4);
  const answerCount = view.readUInt16BE(6);
  if (questions < 1 || (flags >> 11) & 0xf) return undefined; // only standard queries
  const question = readName(data, 12);
  if (question === undefined || question.next + 4 > data.length) return undefined;
  const queryType = view.readUInt16BE(question.next);
  let offset = question.next + 4;
  // Skip further questions (rare).
  for (let index = 1; index < questions; index++) {
    const name = readName(data, offset);
    if (name === undefined || name.next + 4 > data.length) return undefined;
    offset = name.next + 4;
  }
  const answers: string[] = [];
  const response = (flags & 0x8000) !== 0;
  for (let index = 0; response && index < Math.min(answerCount, 64); index++) {
    const name = readName(data, offset);
    if (name === undefined || name.next + 10 > data.length) break;
    const type = view.readUInt16BE(name.next);
    const length = view.readUInt16BE(name.next + 8);
    const start = name.next + 10;
    if (start + length > data.length) break;
    if (type === 1 && length === 4) answers.push(formatIpv4(data.subarray(start, start + 4)));
    if (type === 28 && length === 16) answers.push(formatIpv6(data.subarray(start, start + 16)));
    offset = start + length;
  }
  const code = flags & 0xf;
  return { id, response, responseCode: responseCodes[code] ?? `RCODE${code}`, queryName: question.name, queryType: dnsTypeName(queryType), answers };
}
