/**
 * TCP options as `tcpdump -n` (4.99) prints them inside `options [...]`:
 * named kinds with their fields, `[len N]` when an option's length differs
 * from what its kind reads, `[bad opt]` for lengths that do not fit, and
 * other kinds as `unknown-KIND 0x…`.
 */
import { mptcpOptionSummary } from "./mptcp-option-summary.js";

/** How the options ended (tcpOptionsSummary's result without OptionsEnd.afterMptcp): done after the closing "]"; otherwise as tcpdump stops the line. */
export const enum OptionsEnd {
  done,
  /** `[bad opt]` printed: tcpdump prints nothing more of the segment. */
  bad,
  /** Cut in an option's data: ` [|tcp]`, with ">" behind it after the first option. */
  cut,
  cutAfterFirst,
  /** Cut at an option's kind or length byte: tcpdump's printer unwinds. */
  cutUnwinds,
  /** Added to the others after an MPTCP option: tcpdump then names later cuts [|mptcp]. */
  afterMptcp = 8,
}

/** tcpdump's names of the option kinds it knows. */
const optionNames: readonly string[] = (() => {
  const names: string[] = [];
  for (let kind = 0; kind < 256; kind++) names.push(`unknown-${kind}`);
  const known: [number, string][] = [[0, "eol"], [1, "nop"], [2, "mss"], [3, "wscale"], [4, "sackOK"], [5, "sack"], [6, "echo"],
    [7, "echoreply"], [8, "TS"], [11, "cc"], [12, "ccnew"], [13, ""], [19, "md5"], [20, "scps"], [28, "uto"], [29, "tcp-ao"], [30, "mptcp"],
    [34, "tfo"], [254, "exp"]];
  for (const [kind, name] of known) names[kind] = name;
  return names;
})();

const hexDigits = "0123456789abcdef";
const hex2 = (byte: number) => hexDigits[byte >> 4]! + hexDigits[byte & 15]!;

const u16 = (bytes: Uint8Array, at: number) => (bytes[at]! << 8) | bytes[at + 1]!;
const u32 = (bytes: Uint8Array, at: number) => ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;

/** tcpdump reads `count` data bytes of an option from `data`: past the header (`left`) that is a bad option, past the capture a cut. */
function check(count: number, left: number, data: number, captured: number, first: boolean): OptionsEnd {
  return count > left ? OptionsEnd.bad : data + count > captured ? (first ? OptionsEnd.cut : OptionsEnd.cutAfterFirst) : OptionsEnd.done;
}

/** A fast open cookie (request when empty), as tcpdump prints it after "tfo " or "exp-tfo". */
function fastOpenText(options: Uint8Array, start: number, length: number): string {
  if (length === 0) return " cookiereq";
  if (length % 2 !== 0 || length < 4 || length > 16) return " (invalid)";
  let text = " cookie ";
  for (let i = start; i < start + length; i++) text += hex2(options[i]!);
  return text;
}

/**
 * Pushes the text of the `size` option bytes to `output`; `options`: the bytes captured from the first (tcpdump reads a length byte past the header).
 * `sackBase`: subtracted from SACK edges (0 for absolute numbers). `segmentCaptured`: the whole segment
 * was captured (tcpdump's md5 check needs it). `tcpFlags`: the segment's flags (MPTCP options depend on them).
 */
export function tcpOptionsSummary(options: Uint8Array, size: number, sackBase: number, segmentCaptured: boolean, tcpFlags: number, output: string[]): number {
  const captured = options.length;
  let left = size;
  let offset = 0;
  let first = true;
  let mptcp = 0;
  while (left > 0) {
    if (!first) output.push(",");
    if (offset >= captured) return OptionsEnd.cutUnwinds | mptcp;
    const kind = options[offset]!;
    let length = 1;
    if (kind > 1) {
      if (offset + 1 >= captured) return OptionsEnd.cutUnwinds | mptcp;
      length = options[offset + 1]!;
      if (length < 2 || length > left) { output.push(first ? "[bad opt]" : "[bad opt]]"); return OptionsEnd.bad | mptcp; }
      left--;
    }
    left--;
    const data = kind > 1 ? offset + 2 : offset + 1;
    let read = 0;
    let text = optionNames[kind]!;
    let end: OptionsEnd = OptionsEnd.done;
    switch (kind) {
      case 2: case 3: case 20: case 28: case 8: case 6: case 7: case 11: case 12: case 13: case 19:
        read = kind === 3 ? 1 : kind === 2 || kind === 20 || kind === 28 ? 2 : kind === 8 ? 8 : kind === 19 ? 16 : 4;
        end = check(read, left, data, captured, first);
        if (end !== OptionsEnd.done) break;
        if (kind === 2) text += ` ${u16(options, data)}`;
        else if (kind === 3) text += ` ${options[data]}`;
        else if (kind === 20) text += ` cap ${hex2(options[data]!)} id ${options[data + 1]}`;
        else if (kind === 28) {
          const value = u16(options, data);
          text += ` 0x${value.toString(16)} ${value & 1 ? (value >> 1) * 60 : value >> 1}`;
        } else if (kind === 8) text += ` val ${u32(options, data)} ecr ${u32(options, data + 4)}`;
        else if (kind === 19) {
          text += segmentCaptured ? " shared secret not supplied with -M, can't check - " : " snaplen too short, can't check - ";
          for (let i = data; i < data + 16; i++) text += hex2(options[i]!);
        } else text += ` ${u32(options, data)}`;
        break;
      case 5:
        read = length - 2;
        if (read % 8 !== 0) { text += " invalid sack"; break; }
        text += ` ${read / 8} `;
        for (let i = 0; i < read && end === OptionsEnd.done; i += 8) {
          end = check(i + 4, left, data, captured, first);
          if (end === OptionsEnd.done) end = check(i + 8, left, data, captured, first);
          if (end === OptionsEnd.done) text += `{${(u32(options, data + i) - sackBase) >>> 0}:${(u32(options, data + i + 4) - sackBase) >>> 0}}`;
        }
        break;
      case 29:
        read = length - 2;
        if (read < 2) { text += " (invalid)"; break; }
        end = check(1, left, data, captured, first);
        if (end === OptionsEnd.done) {
          text += ` keyid ${options[data]}`;
          end = check(2, left, data, captured, first);
        }
        if (end === OptionsEnd.done) text += ` rnextkeyid ${options[data + 1]}`;
        if (end === OptionsEnd.done && read > 2) {
          text += " mac 0x";
          for (let i = 2; i < read && end === OptionsEnd.done; i++) {
            end = check(i + 1, left, data, captured, first);
            if (end === OptionsEnd.done) text += hex2(options[data + i]!);
          }
        }
        break;
      case 30:
        read = length - 2;
        end = check(read, left, data, captured, first);
        if (end !== OptionsEnd.done) break;
        output.push(text);
        text = "";
        mptcp = OptionsEnd.afterMptcp;
        if (!mptcpOptionSummary(options, offset, length, tcpFlags, output)) end = OptionsEnd.bad;
        break;
      case 34:
        read = length - 2;
        end = check(read, left, data, captured, first);
        if (end === OptionsEnd.done) text += ` ${fastOpenText(options, data, read)}`;
        break;
      case 254:
        read = length - 2;
        end = check(read, left, data, captured, first);
        if (end === OptionsEnd.done && read < 2) end = OptionsEnd.bad;
        if (end === OptionsEnd.done) text += u16(options, data) === 0xf989 ? `-tfo${fastOpenText(options, data + 2, read - 2)}` : `-${u16(options, data).toString(16).padStart(4, "0")}`;
        break;
      case 0: case 1: case 4:
        break;
      default:
        read = length - 2;
        if (read > 0) text += " 0x";
        for (let i = 0; i < read && end === OptionsEnd.done; i++) {
          end = check(i + 1, left, data, captured, first);
          if (end === OptionsEnd.done) text += hex2(options[data + i]!);
        }
    }
    output.push(text);
    if (end === OptionsEnd.bad) { output.push(first ? "[bad opt]" : "[bad opt]]"); return end | mptcp; }
    if (end !== OptionsEnd.done) return end | mptcp;
    offset = data + read;
    left -= read;
    if (read + (kind > 1 ? 2 : 1) !== length) output.push(`[len ${length}]`);
    first = false;
    if (kind === 0) break;
  }
  output.push("]");
  return OptionsEnd.done | mptcp;
}
