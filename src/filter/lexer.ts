import { FilterSyntaxError } from "./filter-syntax-error.js";
import { parseIpv6 } from "../pcap/address-text.js";

export type TokenKind =
  | "keyword" // a reserved word (canonical spelling in `text`)
  | "number" // a numeric literal or a named constant (icmptype, tcp-syn, ...)
  | "ipv4" // dotted address or network: 10, 10.1, 10.1.2, 10.1.2.3 (only the dotted forms)
  | "ipv6"
  | "mac"
  | "name" // host, service, protocol or other name (also backslash-escaped keywords)
  | "operator"
  | "end";

export interface Token {
  kind: TokenKind;
  /** Canonical text: keyword synonyms and operator spellings are normalised ("&&" → "and"). */
  text: string;
  /** The text as written. */
  source: string;
  start: number;
  end: number;
  /** For "number": the value. */
  value?: number;
  /** For "ipv6" and "mac": the address bytes. */
  bytes?: Uint8Array;
}

const keywordSynonyms: Record<string, string> = {
  ether: "link", fddi: "link", tr: "link", wlan: "link", ppp: "link", slip: "link", link: "link",
  length: "len", "es-is": "esis", "is-is": "isis", address1: "addr1", address2: "addr2", address3: "addr3", address4: "addr4",
  ruleset: "rset", rulenum: "rnr", subrulenum: "srnr", on: "ifname", direction: "dir",
};

export const keywords: ReadonlySet<string> = new Set([
  "dst", "src", "host", "gateway", "net", "mask", "port", "portrange", "proto", "protochain",
  "ip", "ip6", "arp", "rarp", "sctp", "tcp", "udp", "icmp", "igmp", "igrp", "pim", "vrrp", "carp", "radio",
  "link", "atalk", "aarp", "decnet", "lat", "sca", "moprc", "mopdl", "iso", "esis", "isis",
  "l1", "l2", "iih", "lsp", "snp", "csnp", "psnp", "clnp", "stp", "ipx", "netbeui",
  "broadcast", "multicast", "and", "or", "not", "len", "less", "greater", "byte", "inbound", "outbound",
  "ifindex", "vlan", "mpls", "pppoed", "pppoes", "geneve", "vxlan", "lane", "llc", "metac", "bcc", "oam",
  "oamf4", "oamf4ec", "oamf4sc", "sc", "ilmic", "vpi", "vci", "connectmsg", "metaconnect", "ifname",
  "rnr", "reason", "rset", "srnr", "action", "fisu", "lssu", "lsu", "msu", "hfisu", "hlssu", "hmsu",
  "sio", "opc", "dpc", "sls", "hsio", "hopc", "hdpc", "hsls", "type", "subtype", "dir",
  "addr1", "addr2", "addr3", "addr4", "ra", "ta", "icmp6", "ah", "esp",
]);

/** Named constants the scanner turns into numbers (offsets, ICMP types, TCP flags). */
export const namedConstants: Record<string, number> = {
  icmptype: 0, icmpcode: 1, icmp6type: 0, icmp6code: 1, tcpflags: 13,
  "icmp-echoreply": 0, "icmp-unreach": 3, "icmp-sourcequench": 4, "icmp-redirect": 5, "icmp-echo": 8,
  "icmp-routeradvert": 9, "icmp-routersolicit": 10, "icmp-timxceed": 11, "icmp-paramprob": 12,
  "icmp-tstamp": 13, "icmp-tstampreply": 14, "icmp-ireq": 15, "icmp-ireqreply": 16,
  "icmp-maskreq": 17, "icmp-maskreply": 18,
  "tcp-fin": 0x01, "tcp-syn": 0x02, "tcp-rst": 0x04, "tcp-push": 0x08, "tcp-ack": 0x10, "tcp-urg": 0x20,
  "tcp-ece": 0x40, "tcp-cwr": 0x80,
  "icmp6-destinationunreach": 1, "icmp6-packettoobig": 2, "icmp6-timeexceeded": 3,
  "icmp6-parameterproblem": 4, "icmp6-echo": 128, "icmp6-echoreply": 129,
  "icmp6-multicastlistenerquery": 130, "icmp6-multicastlistenerreportv1": 131,
  "icmp6-multicastlistenerdone": 132, "icmp6-routersolicit": 133, "icmp6-routeradvert": 134,
  "icmp6-neighborsolicit": 135, "icmp6-neighboradvert": 136, "icmp6-redirect": 137,
  "icmp6-routerrenum": 138, "icmp6-nodeinformationquery": 139, "icmp6-nodeinformationresponse": 140,
  "icmp6-ineighbordiscoverysolicit": 141, "icmp6-ineighbordiscoveryadvert": 142,
  "icmp6-multicastlistenerreportv2": 143, "icmp6-homeagentdiscoveryrequest": 144,
  "icmp6-homeagentdiscoveryreply": 145, "icmp6-mobileprefixsolicit": 146,
  "icmp6-mobileprefixadvert": 147, "icmp6-certpathsolicit": 148, "icmp6-certpathadvert": 149,
  "icmp6-multicastrouteradvert": 151, "icmp6-multicastroutersolicit": 152,
  "icmp6-multicastrouterterm": 153,
};

const operatorSpellings: [string, string][] = [
  ["&&", "and"], ["||", "or"], ["==", "="], ["!=", "!="], [">=", ">="], ["<=", "<="], ["<<", "<<"], [">>", ">>"],
  ["!", "not"], ["=", "="], [">", ">"], ["<", "<"], ["+", "+"], ["-", "-"], ["*", "*"], ["/", "/"], ["%", "%"],
  ["&", "&"], ["|", "|"], ["^", "^"], ["(", "("], [")", ")"], ["[", "["], ["]", "]"], [":", ":"],
];

const identifierPattern = /[A-Za-z0-9](?:[-_.A-Za-z0-9]*[.A-Za-z0-9])?/y;
const addressPattern = /[0-9A-Fa-f:.]+/y;
const numberPattern = /^(?:[0-9]+|0[xX][0-9A-Fa-f]+)$/;
const dottedPattern = /^(?:[0-9]+|0[xX][0-9A-Fa-f]+)(?:\.(?:[0-9]+|0[xX][0-9A-Fa-f]+)){1,3}$/;
const macPatterns = [
  /^([0-9A-Fa-f]{1,2}):([0-9A-Fa-f]{1,2}):([0-9A-Fa-f]{1,2}):([0-9A-Fa-f]{1,2}):([0-9A-Fa-f]{1,2}):([0-9A-Fa-f]{1,2})$/,
  /^([0-9A-Fa-f]{1,2})-([0-9A-Fa-f]{1,2})-([0-9A-Fa-f]{1,2})-([0-9A-Fa-f]{1,2})-([0-9A-Fa-f]{1,2})-([0-9A-Fa-f]{1,2})$/,
  /^([0-9A-Fa-f]{1,2})\.([0-9A-Fa-f]{1,2})\.([0-9A-Fa-f]{1,2})\.([0-9A-Fa-f]{1,2})\.([0-9A-Fa-f]{1,2})\.([0-9A-Fa-f]{1,2})$/,
  /^([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})\.([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})\.([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})$/,
  /^([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})$/,
];

/** Parses a MAC address in any of the forms pcap-filter(7) accepts; undefined if it is not one. */
export function parseMacAddress(text: string): Uint8Array | undefined {
  for (const pattern of macPatterns) {
    const match = pattern.exec(text);
    if (match) return Uint8Array.from(match.slice(1, 7).map((part) => parseInt(part, 16)));
  }
  return undefined;
}

/** Parses an IPv6 address (with optional embedded IPv4 tail); undefined if it is not one. */
export function parseIpv6Address(text: string): Uint8Array | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || text.length < 2) return undefined;
  const bytes = parseIpv6(text);
  return bytes ? new Uint8Array(bytes) : undefined;
}

/**
 * Parses a number as libpcap does: decimal, 0x hexadecimal, or octal with a
 * leading 0. Throws a FilterSyntaxError on overflow or a bad octal digit.
 */
export function parseFilterNumber(expression: string, text: string, start: number): number {
  let value: number;
  if (/^0[xX]/.test(text)) value = parseInt(text.slice(2), 16);
  else if (text.length > 1 && text.startsWith("0")) {
    if (/[89]/.test(text)) throw new FilterSyntaxError(expression, { start, end: start + text.length }, `number ${text} contains non-octal digit`);
    value = parseInt(text, 8);
  } else value = parseInt(text, 10);
  if (!(value <= 0xffffffff)) {
    throw new FilterSyntaxError(expression, { start, end: start + text.length }, `number ${text} overflows 32 bits`, "a number from 0 to 4294967295");
  }
  return value;
}

/** Splits a filter expression into tokens, following libpcap's scanner (longest match wins). */
export function tokenize(expression: string): Token[] {
  const tokens: Token[] = [];
  let position = 0;
  const length = expression.length;
  while (position < length) {
    const char = expression[position]!;
    if (char === " " || char === "\t" || char === "\n" || char === "\r") {
      position++;
      continue;
    }
    if (char === "\\") {
      let end = position + 1;
      while (end < length && !" !()\n\t".includes(expression[end]!)) end++;
      if (end === position + 1) throw new FilterSyntaxError(expression, { start: position, end: position + 1 }, "a backslash must be followed by a name", "a name such as \\tcp");
      const text = expression.slice(position + 1, end);
      tokens.push({ kind: "name", text, source: expression.slice(position, end), start: position, end });
      position = end;
      continue;
    }
    identifierPattern.lastIndex = position;
    const identifier = identifierPattern.exec(expression)?.[0] ?? "";
    addressPattern.lastIndex = position;
    const addressRun = addressPattern.exec(expression)?.[0] ?? "";
    if (addressRun.includes(":") && addressRun.length > identifier.length) {
      const token = addressToken(addressRun, position);
      if (token) {
        tokens.push(token);
        position += addressRun.length;
        continue;
      }
      const bogus = /^(?:[0-9A-Fa-f]{1,2}:+){2,}/.exec(addressRun);
      if (bogus) {
        throw new FilterSyntaxError(expression, { start: position, end: position + addressRun.length }, `bogus address ${addressRun}`, "an IPv6 address (2001:db8::1) or a MAC address (00:11:22:33:44:55)");
      }
    }
    if (identifier.length > 0) {
      tokens.push(wordToken(expression, identifier, position));
      position += identifier.length;
      continue;
    }
    const operator = operatorSpellings.find(([spelling]) => expression.startsWith(spelling, position));
    if (operator) {
      const kind = operator[1] === "and" || operator[1] === "or" || operator[1] === "not" ? "keyword" : "operator";
      tokens.push({ kind, text: operator[1], source: operator[0], start: position, end: position + operator[0].length });
      position += operator[0].length;
      continue;
    }
    // A whole character (an emoji is two UTF-16 units), so the message and the caret show it, not half of it.
    const whole = String.fromCodePoint(expression.codePointAt(position)!);
    throw new FilterSyntaxError(expression, { start: position, end: position + whole.length }, `illegal character ${JSON.stringify(whole)}`, "a primitive, an operator or a parenthesis");
  }
  tokens.push({ kind: "end", text: "", source: "", start: length, end: length });
  return tokens;
}

function addressToken(text: string, start: number): Token | undefined {
  const end = start + text.length;
  const mac = parseMacAddress(text);
  if (mac) return { kind: "mac", text, source: text, start, end, bytes: mac };
  const ipv6 = parseIpv6Address(text);
  if (ipv6) return { kind: "ipv6", text, source: text, start, end, bytes: ipv6 };
  return undefined;
}

function wordToken(expression: string, text: string, start: number): Token {
  const end = start + text.length;
  const canonical = keywordSynonyms[text] ?? text;
  if (keywords.has(canonical)) return { kind: "keyword", text: canonical, source: text, start, end };
  if (text in namedConstants) return { kind: "number", text, source: text, start, end, value: namedConstants[text]! };
  if (/^[0-9A-Fa-f]{12}$|^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$/.test(text)) {
    return { kind: "mac", text, source: text, start, end, bytes: parseMacAddress(text)! };
  }
  if (numberPattern.test(text)) return { kind: "number", text, source: text, start, end, value: parseFilterNumber(expression, text, start) };
  if (dottedPattern.test(text)) return { kind: "ipv4", text, source: text, start, end };
  const mac = parseMacAddress(text);
  if (mac) return { kind: "mac", text, source: text, start, end, bytes: mac };
  return { kind: "name", text, source: text, start, end };
}
