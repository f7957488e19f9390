/**
 * The MPTCP option (TCP option kind 30, RFC 8684) as `tcpdump -n` 4.99 prints
 * it after "mptcp": the option's length, the subtype's name and its fields.
 */
import { formatIpv4, formatIpv6 } from "../pcap/address-text.js";

const subtypeNames = ["capable", "join", "dss", "add-addr", "rem-addr", "prio", "fail", "fast-close", "unknown"];
const syn = 0x02;
const ack = 0x10;

const u32 = (bytes: Uint8Array, at: number) => ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;

/** The 64-bit number at `at` in hex (no leading zeros). */
function hex64(bytes: Uint8Array, at: number): string {
  const high = u32(bytes, at);
  const low = u32(bytes, at + 4);
  return high === 0 ? low.toString(16) : high.toString(16) + low.toString(16).padStart(8, "0");
}

function decimal64(bytes: Uint8Array, at: number): string {
  const high = u32(bytes, at);
  const low = u32(bytes, at + 4);
  return high === 0 ? `${low}` : `${(BigInt(high) << 32n) | BigInt(low)}`;
}

/** A DSS option's fields after its flags byte, as far as tcpdump prints them; false when its length does not fit them. */
function dssSummary(option: Uint8Array, start: number, length: number, output: string[]): boolean {
  const flags = option[start + 3]!;
  if (flags & 0x10) output.push(" fin");
  let at = start + 4;
  const end = start + length;
  // The a / m flags: an 8-byte data ack / sequence number instead of a 4-byte one.
  if (flags & 0x01) {
    output.push(" ack ");
    const size = flags & 0x02 ? 8 : 4;
    if (end - at < size) return false;
    output.push(size === 8 ? decimal64(option, at) : `${u32(option, at)}`);
    at += size;
  }
  if (flags & 0x04) {
    output.push(" seq ");
    const size = flags & 0x08 ? 8 : 4;
    if (end - at < size) return false;
    output.push(size === 8 ? decimal64(option, at) : `${u32(option, at)}`);
    at += size;
    if (end - at < 4) return false;
    output.push(` subseq ${u32(option, at)}`);
    at += 4;
    if (end - at < 2) return false;
    output.push(` len ${(option[at]! << 8) | option[at + 1]!}`);
    at += 2;
    if (end - at >= 2) {
      output.push(` csum 0x${((option[at]! << 8) | option[at + 1]!).toString(16)}`);
      at += 2;
    }
  }
  return at === end;
}

/**
 * Pushes the text after "mptcp" of the option of `length` bytes (all captured) at `start` of `option`, in a
 * segment with TCP flags `tcpFlags`, to `output`; false where tcpdump calls the option bad (after that text).
 */
export function mptcpOptionSummary(option: Uint8Array, start: number, length: number, tcpFlags: number, output: string[]): boolean {
  if (length < 3) return false;
  const subtype = Math.min(option[start + 2]! >> 4, 8);
  const head = ` ${length} ${subtypeNames[subtype]}`;
  let rest: string | undefined;
  switch (subtype) {
    case 0: {
      if (!(((length === 12 || length === 4) && tcpFlags & syn) || ((length === 20 || length === 22) && (tcpFlags & (syn | ack)) === ack))) break;
      const version = option[start + 2]! & 0x0f;
      if (version > 1) {
        rest = ` Unknown Version (${version})`;
        break;
      }
      rest = ` v${version}${option[start + 3]! & 0x80 ? " csum" : ""}`;
      if (length >= 12) rest += ` {0x${hex64(option, start + 4)}${length >= 20 ? `,0x${hex64(option, start + 12)}` : ""}}`;
      break;
    }
    case 1:
      if (!((length === 12 && tcpFlags & syn) || (length === 16 && (tcpFlags & (syn | ack)) === (syn | ack)) || (length === 24 && tcpFlags & ack))) break;
      rest = length === 24 ? "" : `${option[start + 2]! & 1 ? " backup" : ""} id ${option[start + 3]}`;
      if (length === 12) rest += ` token 0x${u32(option, start + 4).toString(16)} nonce 0x${u32(option, start + 8).toString(16)}`;
      else if (length === 16) rest += ` hmac 0x${hex64(option, start + 4)} nonce 0x${u32(option, start + 12).toString(16)}`;
      else {
        rest += " hmac 0x";
        for (let i = start + 4; i < start + 24; i++) rest += option[i]!.toString(16).padStart(2, "0");
      }
      break;
    case 2:
      if (length < 4 || (tcpFlags & syn) !== 0) break;
      output.push(head);
      return dssSummary(option, start, length, output);
    case 3: {
      if (length < 8 || length > 30 || length % 2 !== 0 || length === 12 || length === 14 || length === 24 || length === 26) break;
      const echo = option[start + 2]! & 0x0f;
      rest = ` ${echo === 6 ? "v0-ip6" : echo === 4 ? "v0-ip4" : echo === 1 ? "v1-echo" : echo === 0 ? "v1" : "[bad version/echo]"} id ${option[start + 3]}`;
      const v4 = length < 20;
      const address = start + 4;
      const port = address + (v4 ? 4 : 16);
      rest += ` ${v4 ? formatIpv4(option, address) : formatIpv6(option, address)}`;
      const withPort = length === 10 || length === 18 || length === 22 || length === 30;
      if (withPort) rest += `:${(option[port]! << 8) | option[port + 1]!}`;
      if (length === 16 || length === 18 || length === 28 || length === 30) rest += ` hmac 0x${hex64(option, withPort ? port + 2 : port)}`;
      break;
    }
    case 4:
      if (length < 4) break;
      rest = " id";
      for (let i = start + 3; i < start + length; i++) rest += ` ${option[i]}`;
      break;
    case 5:
      if (length === 3 || length === 4) rest = `${option[start + 2]! & 1 ? " backup" : " non-backup"}${length === 4 ? ` id ${option[start + 3]}` : ""}`;
      break;
    case 6:
      if (length === 12) rest = ` seq ${decimal64(option, start + 4)}`;
      break;
    case 7:
      if (length === 12) rest = ` key 0x${hex64(option, start + 4)}`;
      break;
    default:
      rest = "";
  }
  output.push(rest === undefined ? head : head + rest);
  return rest !== undefined;
}
