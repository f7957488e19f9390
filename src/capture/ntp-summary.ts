/**
 * NTP messages (UDP port 123) as tcpdump 4.99 -n prints them: the version,
 * mode and length, and with -v the leap indicator and the fields of a time
 * message (stratum, poll, precision, root delay and dispersion, reference
 * ID, the four timestamps and two differences, key ID and digest) or a
 * control message (mode 6), with tcpdump's ` [|ntp]` and ` (invalid)`.
 */
import { formatIpv4 } from "../pcap/address-text.js";
import { printableText } from "./printable-text.js";
import { decoderCut } from "./decoder-cut.js";

const modeNames = ["unspecified", "symmetric active", "symmetric passive", "Client", "Server", "Broadcast", "Control Message", "Reserved"];
const leapNames = ["", "+1s", "-1s", "clock unsynchronized"];

/** Thrown when a field ends past the captured bytes (tcpdump: ` [|ntp]`). */
const cut = new Error("cut");

/** The message being described: bytes [start, end) were captured. One message at a time, so no object per message. */
const empty: Uint8Array = new Uint8Array(0);
let bytes = empty;
let start = 0;
let end = 0;

/** Throws `cut` unless the `count` bytes at message offset `at` were captured. */
function need(at: number, count: number): void {
  if (start + at + count > end) throw cut;
}

/** need() for the fields tcpdump reads with GET_… (a cut there unwinds its printer: see decoderCut). */
function get(at: number, count: number): void {
  if (start + at + count > end) {
    decoderCut.wholeFrame = true;
    throw cut;
  }
}

function u16(at: number): number {
  return (bytes[start + at]! << 8) | bytes[start + at + 1]!;
}

function u32(at: number): number {
  return ((bytes[start + at]! << 24) | (bytes[start + at + 1]! << 16) | (bytes[start + at + 2]! << 8) | bytes[start + at + 3]!) >>> 0;
}

const signed8 = (value: number) => (value << 24) >> 24;

/** Billionths of a second in a 32-bit binary fraction, truncated as tcpdump's double arithmetic does. */
const nanoseconds = (fraction: number) => String(Math.floor((fraction / 4294967296) * 1e9)).padStart(9, "0");

/** A 64-bit NTP timestamp: seconds.nanoseconds since 1900, and the UTC date unless the seconds are 0. */
function timestamp(at: number): string {
  const seconds = u32(at);
  const text = `${seconds}.${nanoseconds(u32(at + 4))}`;
  if (seconds === 0) return text;
  return `${text} (${new Date((seconds - 2208988800) * 1000).toISOString().slice(0, 19)}Z)`;
}

/** The difference of the timestamps at `to` and `from` with its sign; the later one alone when `from` is zero. */
function difference(from: number, to: number): string {
  const fromSeconds = u32(from);
  const fromFraction = u32(from + 4);
  if (fromSeconds === 0 && fromFraction === 0) return timestamp(to);
  const toSeconds = u32(to);
  const toFraction = u32(to + 4);
  let negative: boolean;
  let seconds: number;
  let fraction: number;
  if (toSeconds > fromSeconds) {
    negative = false;
    seconds = toSeconds - fromSeconds - (fromFraction > toFraction ? 1 : 0);
    fraction = (toFraction - fromFraction) >>> 0;
  } else if (toSeconds < fromSeconds) {
    negative = true;
    seconds = fromSeconds - toSeconds - (toFraction > fromFraction ? 1 : 0);
    fraction = (fromFraction - toFraction) >>> 0;
  } else {
    negative = toFraction <= fromFraction;
    seconds = 0;
    fraction = negative ? fromFraction - toFraction : toFraction - fromFraction;
  }
  return `${negative ? "-" : "+"}${seconds}.${nanoseconds(fraction)}`;
}

/** A 32-bit fixed-point number (16.16) as seconds with six decimals. */
function shortFixed(at: number): string {
  return `${u16(at)}.${String(Math.floor((u16(at + 2) / 65536) * 1e6)).padStart(6, "0")}`;
}

/**
 * The text tcpdump prints for an NTP message in `data[messageStart, messageEnd)` (the bytes
 * captured) whose length on the wire is `length`; ` [|ntp]` when not even its first byte was captured.
 */
export function ntpSummary(data: Uint8Array, messageStart: number, messageEnd: number, length: number, verbose: boolean): string {
  if (messageStart >= messageEnd) {
    decoderCut.wholeFrame = true;
    return " [|ntp]";
  }
  const status = data[messageStart]!;
  const mode = status & 7;
  const head = `NTPv${(status >> 3) & 7}, ${modeNames[mode]}, length ${length}`;
  if (!verbose) return head;
  bytes = data;
  start = messageStart;
  end = messageEnd;
  let text = `${head}\n\tLeap indicator: ${leapNames[status >> 6]} (${status & 0xc0})`;
  if (mode <= 5) text = timeMessage(text, length);
  else if (mode === 6) text = controlMessage(text, length);
  bytes = empty;
  return text;
}

/** ` (invalid)`, and ` [|ntp]` when the message was not all captured. */
function invalid(text: string, length: number): string {
  return `${text} (invalid)${start + length > end ? " [|ntp]" : ""}`;
}

/** The fields of a time message (modes 0-5); `text` is what was printed before, extended field by field. */
function timeMessage(text: string, length: number): string {
  if (length < 48) return invalid(text, length);
  try {
    get(1, 1);
    const stratum = bytes[start + 1]!;
    text += (`, Stratum ${stratum} (${stratum === 0 ? "unspecified" : stratum === 1 ? "primary reference" : stratum <= 15 ? "secondary reference" : "reserved"})`);
    get(2, 1);
    const poll = signed8(bytes[start + 2]!);
    text += (`, poll ${poll}${poll > -32 && poll < 32 ? (poll >= 0 ? ` (${2 ** poll}s)` : ` (1/${2 ** -poll}s)`) : ""}`);
    get(3, 1);
    text += (`, precision ${signed8(bytes[start + 3]!)}`);
    need(4, 4);
    text += (`\n\tRoot Delay: ${shortFixed(4)}`);
    need(8, 4);
    text += (`, Root dispersion: ${shortFixed(8)}`);
    need(12, 4);
    switch (stratum) {
      case 0: text += (", Reference-ID: (unspec)"); break;
      case 1: text += (`, Reference-ID: ${printableText(bytes, start + 12, start + 16)}`); break;
      case 62: return `${text}, Reference-ID: ${formatIpv4(bytes, start + 12)} INFO_QUERY`;
      case 63: return `${text}, Reference-ID: ${formatIpv4(bytes, start + 12)} INFO_REPLY`;
      default: text += (`, Reference-ID: 0x${u32(12).toString(16).padStart(8, "0")}`);
    }
    need(16, 8);
    text += (`\n\t  Reference Timestamp:  ${timestamp(16)}`);
    need(24, 8);
    text += (`\n\t  Originator Timestamp: ${timestamp(24)}`);
    need(32, 8);
    text += (`\n\t  Receive Timestamp:    ${timestamp(32)}`);
    need(40, 8);
    text += (`\n\t  Transmit Timestamp:   ${timestamp(40)}`);
    text += (`\n\t    Originator - Receive Timestamp:  ${difference(24, 32)}\n\t    Originator - Transmit Timestamp: ${difference(24, 40)}`);
    if (length === 52 || length === 68 || length === 72) {
      get(48, 4);
      text += (`\n\tKey id: ${u32(48)}`);
      if (length > 52) {
        const words = (length - 52) / 4;
        need(52, 4 * words);
        let digest = "";
        for (let i = 0; i < words; i++) digest += u32(52 + 4 * i).toString(16).padStart(8, "0");
        text += (`\n\tAuthentication: ${digest}`);
      }
    } else if (length > 48) {
      text += (`\n\t(${length - 48} more bytes after the header)`);
    }
    return text;
  } catch (error) {
    if (error !== cut) throw error;
    return `${text} [|ntp]`;
  }
}

/** The header of a control message (mode 6). */
function controlMessage(text: string, length: number): string {
  if (length < 12) return invalid(text, length);
  try {
    get(1, 1);
    const control = bytes[start + 1]!;
    text += `, ${control & 0x80 ? "Response" : "Request"}, ${control & 0x40 ? "Error" : "OK"}, ${control & 0x20 ? "More" : "Last"}, OpCode=${control & 0x1f}\n`;
    get(2, 2);
    text += `\tSequence=${u16(2)}`;
    get(4, 2);
    const status = u16(4);
    text += `, Status=${status === 0 ? "0" : `0x${status.toString(16)}`}`;
    get(6, 2);
    text += `, Assoc.=${u16(6)}`;
    get(8, 2);
    text += `, Offset=${u16(8)}`;
    get(10, 2);
    const count = u16(10);
    text += `, Count=${count}`;
    if (length < 12 + count) return invalid(text, length);
    if (count !== 0) {
      need(12, count);
      text += "\n\tTO-BE-DONE: data not interpreted";
    }
    return text;
  } catch (error) {
    if (error !== cut) throw error;
    return `${text} [|ntp]`;
  }
}
