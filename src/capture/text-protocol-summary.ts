/**
 * The line-based text protocols tcpdump 4.99 decodes with one shared
 * printer: over TCP FTP (port 21), SMTP (25), WHOIS (43), HTTP (80, 8080)
 * and RTSP (554, 8554), over UDP SIP (5060). tcpdump prints the protocol's name and, when the segment
 * starts with a request or response line (always, for FTP, SMTP and WHOIS),
 * that line; with -v ", length: N" and every line up to the first one that
 * is not printable ASCII text ended by LF or CRLF, each on its own
 * tab-indented line. A line that runs to the end of the segment without a
 * line ending is printed with ` [|proto]`; one cut by the snap length is not
 * printed, and tcpdump unwinds there (` [|proto]`, -x dumps the whole frame).
 */
import { decoderCut } from "./decoder-cut.js";

export interface TextProtocol {
  /** tcpdump's name for it, as in ` [|http]`. */
  readonly name: string;
  /** The name as printed in front of the text. */
  readonly label: string;
  /**
   * Request names (matched without regard to case; a segment whose second word is a three-digit status code is
   * a response): only such segments have their first line printed. Undefined: every segment is printed.
   */
  readonly commands: readonly (readonly number[])[][] | undefined;
}

/** Commands grouped by length, as byte codes in upper case. */
function commandTable(names: readonly string[]): number[][][] {
  const table: number[][][] = [];
  for (const name of names) {
    while (table.length <= name.length) table.push([]);
    table[name.length]!.push(Array.from(name, (c) => c.charCodeAt(0)));
  }
  return table;
}

const httpCommands = commandTable([
  "GET", "PUT", "COPY", "HEAD", "LOCK", "MOVE", "POLL", "POST", "BCOPY", "BMOVE", "MKCOL", "TRACE", "LABEL", "MERGE", "DELETE", "SEARCH",
  "UNLOCK", "REPORT", "UPDATE", "NOTIFY", "BDELETE", "CONNECT", "OPTIONS", "CHECKIN", "PROPFIND", "CHECKOUT", "CCM_POST", "SUBSCRIBE",
  "PROPPATCH", "BPROPFIND", "BPROPPATCH", "UNCHECKOUT", "MKACTIVITY", "MKWORKSPACE", "UNSUBSCRIBE", "RPC_CONNECT", "VERSION-CONTROL",
  "BASELINE-CONTROL",
]);
const rtspCommands = commandTable([
  "DESCRIBE", "ANNOUNCE", "GET_PARAMETER", "OPTIONS", "PAUSE", "PLAY", "RECORD", "REDIRECT", "SETUP", "SET_PARAMETER", "TEARDOWN",
]);
const sipCommands = commandTable([
  "ACK", "BYE", "CANCEL", "DO", "INFO", "INVITE", "MESSAGE", "NOTIFY", "OPTIONS", "PRACK", "QAUTH", "REFER", "REGISTER", "SPRACK", "SUBSCRIBE",
  "UPDATE", "PUBLISH",
]);

const ftp: TextProtocol = { name: "ftp", label: "FTP", commands: undefined };
const smtp: TextProtocol = { name: "smtp", label: "SMTP", commands: undefined };
const whois: TextProtocol = { name: "whois", label: "WHOIS", commands: undefined };
const http: TextProtocol = { name: "http", label: "HTTP", commands: httpCommands };
const rtsp: TextProtocol = { name: "rtsp", label: "RTSP", commands: rtspCommands };
const sip: TextProtocol = { name: "sip", label: "SIP", commands: sipCommands };

/**
 * A port's place in tcpdump's order of TCP printers up to RTSP's (lower first), and the text protocol printed
 * there if it is one: Telnet, SMTP, WHOIS, BGP, PPTP, Redis, SSH, BEEP, OpenFlow, FTP, HTTP, RTSP.
 */
function printerRank(port: number): number {
  switch (port) {
    case 23: return 0;
    case 25: return 1;
    case 43: return 2;
    case 179: return 3;
    case 1723: return 4;
    case 6379: return 5;
    case 22: return 6;
    case 10288: return 7;
    case 6633: case 6653: return 8;
    case 21: return 9;
    case 80: case 8080: return 10;
    case 554: case 8554: return 11;
    default: return 12;
  }
}
const rankedProtocols: (TextProtocol | undefined)[] = [undefined, smtp, whois, undefined, undefined, undefined, undefined, undefined, undefined, ftp, http, rtsp, undefined];

/** The text protocol tcpdump prints a TCP segment's data as, by its ports (either side), or undefined. */
export function tcpTextProtocol(sourcePort: number, destinationPort: number): TextProtocol | undefined {
  const source = printerRank(sourcePort);
  const destination = printerRank(destinationPort);
  return rankedProtocols[source < destination ? source : destination];
}

const space = 0x20;
const tab = 0x09;
const carriageReturn = 0x0d;
const lineFeed = 0x0a;
/** tcpdump's token buffer: at most this many characters. */
const longestToken = 128;

const latin1 = new TextDecoder("latin1");

/**
 * A request or response line's word at `start`: printable ASCII up to a space, tab, CR or LF (or the end of the
 * message), then any spaces after it. Returns the offset after those spaces and sets `wordEnd`, or 0 when there
 * is no word (the message starts with white space or is cut, or the word has other bytes or is too long).
 */
let wordEnd = 0;
function word(data: Uint8Array, start: number, end: number, captured: number): number {
  let at = start;
  for (; at < end; at++) {
    if (at >= captured) return 0;
    const byte = data[at]!;
    if (byte === space || byte === tab || byte === carriageReturn || byte === lineFeed) break;
    if (byte < space || byte > 0x7e || at - start >= longestToken) return 0;
  }
  if (at === start) return 0;
  wordEnd = at;
  while (at < end && at < captured && data[at] === space) at++;
  return at;
}

function isCommand(commands: readonly (readonly number[])[][], data: Uint8Array, start: number, end: number): boolean {
  const candidates = commands[end - start];
  if (candidates === undefined) return false;
  for (const command of candidates) {
    let i = 0;
    for (; i < command.length; i++) {
      let byte = data[start + i]!;
      if (byte >= 0x61 && byte <= 0x7a) byte -= 0x20;
      if (byte !== command[i]) break;
    }
    if (i === command.length) return true;
  }
  return false;
}

const isDigit = (byte: number) => byte >= 0x30 && byte <= 0x39;

/** The message starts with a request (a known command) or a response line (a three-digit code as its second word). */
function startsWithRequestOrResponse(commands: readonly (readonly number[])[][], data: Uint8Array, start: number, end: number, captured: number): boolean {
  const next = word(data, start, end, captured);
  if (next === 0) return false;
  if (isCommand(commands, data, start, wordEnd)) return true;
  if (word(data, next, end, captured) === 0) return false;
  return wordEnd - next === 3 && isDigit(data[next]!) && isDigit(data[next + 1]!) && isDigit(data[next + 2]!);
}

/** Thrown where the line's bytes run past the captured ones: tcpdump unwinds there. */
const cutMark = { cut: true };

/**
 * The line at `start` printed after `prefix` into `output[0]`: returns the offset after its LF or CRLF, or 0 when
 * tcpdump stops there (a byte that is not printable ASCII or a tab, a CR without LF, or the message's end, where
 * it prints what came before with ` [|name]`).
 */
function line(protocol: TextProtocol, data: Uint8Array, start: number, end: number, captured: number, prefix: string, output: { text: string }): number {
  for (let at = start; at < end; at++) {
    if (at >= captured) throw cutMark;
    const byte = data[at]!;
    if (byte === lineFeed) {
      output.text += prefix + latin1.decode(data.subarray(start, at));
      return at + 1;
    }
    if (byte === carriageReturn) {
      if (at + 1 >= end) return 0;
      if (at + 1 >= captured) throw cutMark;
      if (data[at + 1] !== lineFeed) return 0;
      output.text += prefix + latin1.decode(data.subarray(start, at));
      return at + 2;
    }
    if ((byte < space && byte !== tab) || byte > 0x7e) return 0;
  }
  output.text += `${prefix}${latin1.decode(data.subarray(start, end))} [|${protocol.name}]`;
  return 0;
}

/**
 * The text tcpdump prints after a TCP segment's ", length N: " for `protocol`: the message is
 * `data[start, start + length)` of which `data[start, captured)` was captured.
 */
export function textProtocolSummary(protocol: TextProtocol, data: Uint8Array, start: number, captured: number, length: number, verbose: boolean): string {
  const end = start + length;
  const output = { text: protocol.label };
  if (protocol.commands !== undefined && !startsWithRequestOrResponse(protocol.commands, data, start, end, captured)) return output.text;
  try {
    if (!verbose) {
      line(protocol, data, start, end, captured, ": ", output);
      return output.text;
    }
    output.text += `, length: ${length}`;
    for (let at = start; at < end;) {
      at = line(protocol, data, at, end, captured, "\n\t", output);
      if (at === 0) break;
    }
    return output.text;
  } catch (error) {
    if (error !== cutMark) throw error;
    decoderCut.wholeFrame = true;
    return `${output.text} [|${protocol.name}]`;
  }
}

/** The text tcpdump prints for a SIP message (UDP port 5060), as the other UDP decoders take their arguments. */
export function sipSummary(data: Uint8Array, start: number, captured: number, length: number, verbose: boolean): string {
  return textProtocolSummary(sip, data, start, captured, length, verbose);
}
