/**
 * ARP messages (Ethernet types ARP and Reverse ARP) as tcpdump 4.99 -n
 * prints them: request, reply, reverse (RARP) and inverse (InARP) request
 * and reply of any hardware and protocol type and address lengths; the
 * hardware and protocol types with -v, or when the addresses are not
 * IPv4's; Frame Relay hardware addresses as Q.922 DLCIs; ATM ARP
 * (RFC 2225: hardware type 19, its own header with subaddresses and NAK);
 * unknown operations dumped; ` [|arp]` for a message cut before its last
 * address. The length printed is everything after the link header on the
 * wire, padding included.
 */
import { formatHardwareAddress, formatIpv4 } from "../pcap/address-text.js";
import { decoderCut } from "./decoder-cut.js";
import { etherTypeNames } from "./ether-type-names.js";
import { hexLines } from "./hex-lines.js";

const hardwareNames = new Map([
  [1, "Ethernet"], [6, "TokenRing"], [7, "ArcNet"], [15, "FrameRelay"], [19, "ATM"], [23, "Strip"], [24, "IEEE 1394"], [32, "InfiniBand"],
]);
const operationNames = new Map([
  [1, "Request"], [2, "Reply"], [3, "Reverse Request"], [4, "Reverse Reply"], [8, "Inverse Request"], [9, "Inverse Reply"], [10, "NACK Reply"],
]);

const frameRelay = 15;
const atm = 19;

/** The message being described, one at a time (no object per message). */
const empty: Uint8Array = new Uint8Array(0);
let bytes = empty;

const u16 = (at: number) => (bytes[at]! << 8) | bytes[at + 1]!;

function hardwareName(type: number): string {
  return hardwareNames.get(type) ?? `Unknown Hardware (${type})`;
}

function protocolName(type: number): string {
  return etherTypeNames.get(type) ?? `Unknown Protocol (0x${type.toString(16).padStart(4, "0")})`;
}

/** IPv4 and the old trailer encapsulation carry IPv4 addresses. */
const ipProtocol = (protocol: number) => protocol === 0x0800 || protocol === 0x1000;

/** A protocol address: IPv4, or what tcpdump says instead (`wrongLength` for one not 4 bytes long). */
function protocolAddress(protocol: number, at: number, length: number, wrongLength: string): string {
  if (!ipProtocol(protocol)) return "<wrong proto type>";
  return length === 4 ? formatIpv4(bytes, at) : wrongLength;
}

/** A hardware address: hex bytes, or a Q.922 DLCI for Frame Relay. */
function hardwareAddress(hardware: number, at: number, length: number): string {
  if (length === 0) return "<empty>";
  return hardware === frameRelay ? dlciText(at, length) : formatHardwareAddress(bytes, at, length);
}

/** A Q.922 address of 2 to 4 bytes (the extension bit ends it) as `DLCI n`. */
function dlciText(at: number, length: number): string {
  const first = bytes[at]!;
  if (first & 1) return "<Invalid DLCI>";
  if (length < 2) return "<Truncated>";
  const second = bytes[at + 1]!;
  let dlci = ((first & 0xfc) << 2) | (second >> 4);
  if (second & 1) return `DLCI ${dlci}`;
  if (length < 3) return "<Truncated>";
  let next = at + 2;
  if ((bytes[next]! & 1) === 0) {
    dlci = (dlci << 7) | (bytes[next]! >> 1);
    next++;
    if (length < 4) return "<Truncated>";
  }
  if ((bytes[next]! & 1) === 0) return "<Invalid DLCI>";
  return `DLCI ${(dlci << 6) | (bytes[next]! >> 2)}`;
}

function nonzero(at: number, length: number): boolean {
  for (let i = at; i < at + length; i++) if (bytes[i] !== 0) return true;
  return false;
}

/** ` [|arp]`: tcpdump gives up on the message and its -x dump starts at the frame. */
function cut(): string {
  decoderCut.wholeFrame = true;
  return " [|arp]";
}

/**
 * The text tcpdump prints for the ARP message at the start of `data` (the captured bytes after the
 * link header) that is `length` bytes on the wire; `prefix`: "ARP, " in front (tcpdump leaves it out with -e).
 */
export function arpSummary(data: Uint8Array, length: number, verbose: boolean, prefix: boolean): string {
  if (data.length < 8) return cut();
  bytes = data;
  try {
    return u16(0) === atm ? atmArp(length, verbose, prefix) : arp(length, verbose, prefix);
  } finally {
    bytes = empty;
  }
}

function arp(length: number, verbose: boolean, prefix: boolean): string {
  const hardware = u16(0);
  const protocol = u16(2);
  const hardwareLength = bytes[4]!;
  const protocolLength = bytes[5]!;
  const operation = u16(6);
  const senderHardware = 8;
  const senderProtocol = senderHardware + hardwareLength;
  const targetHardware = senderProtocol + protocolLength;
  const targetProtocol = targetHardware + hardwareLength;
  if (targetProtocol + protocolLength > bytes.length) return cut();
  let text = prefix ? "ARP, " : "";
  if (!ipProtocol(protocol) || protocolLength !== 4 || hardwareLength === 0 || verbose) {
    text += `${hardwareName(hardware)} (len ${hardwareLength}), ${protocolName(protocol)} (len ${protocolLength})`;
    if (!verbose) return `${text}, length ${length}`;
    text += ", ";
  }
  text += `${operationNames.get(operation) ?? `Unknown (${operation})`} `;
  switch (operation) {
    case 1:
      text += `who-has ${protocolAddress(protocol, targetProtocol, protocolLength, "<wrong len>")}`;
      if (nonzero(targetHardware, hardwareLength)) text += ` (${hardwareAddress(hardware, targetHardware, hardwareLength)})`;
      text += ` tell ${protocolAddress(protocol, senderProtocol, protocolLength, "<wrong len>")}`;
      break;
    case 2:
      text += `${protocolAddress(protocol, senderProtocol, protocolLength, "<wrong len>")} is-at ${hardwareAddress(hardware, senderHardware, hardwareLength)}`;
      break;
    case 3:
    case 8:
      text += `who-is ${hardwareAddress(hardware, targetHardware, hardwareLength)} tell ${hardwareAddress(hardware, senderHardware, hardwareLength)}`;
      break;
    case 4:
      text += `${hardwareAddress(hardware, targetHardware, hardwareLength)} at ${protocolAddress(protocol, targetProtocol, protocolLength, "<wrong len>")}`;
      break;
    case 9:
      text += `${hardwareAddress(hardware, senderHardware, hardwareLength)} at ${protocolAddress(protocol, senderProtocol, protocolLength, "<wrong len>")}`;
      break;
    default:
      return text + hexLines(bytes, true);
  }
  return `${text}, length ${length}`;
}

/** An ATM address and its subaddress (after a comma), or `<No address>`. */
function atmAddress(at: number, length: number, subaddressLength: number): string {
  if (length === 0) return "<No address>";
  const address = formatHardwareAddress(bytes, at, length);
  return subaddressLength === 0 ? address : `${address},${formatHardwareAddress(bytes, at + length, subaddressLength)}`;
}

/** ATM ARP (RFC 2225): type-and-length bytes for each address and subaddress, NAK replies. */
function atmArp(length: number, verbose: boolean, prefix: boolean): string {
  if (bytes.length < 12) return cut();
  const protocol = u16(2);
  const senderHardwareLength = bytes[4]! & 0x3f;
  const senderSubaddressLength = bytes[5]! & 0x3f;
  const operation = u16(6);
  const senderProtocolLength = bytes[8]!;
  const targetHardwareLength = bytes[9]! & 0x3f;
  const targetSubaddressLength = bytes[10]! & 0x3f;
  const targetProtocolLength = bytes[11]!;
  const senderHardware = 12;
  const senderProtocol = senderHardware + senderHardwareLength + senderSubaddressLength;
  const targetHardware = senderProtocol + senderProtocolLength;
  const targetProtocol = targetHardware + targetHardwareLength + targetSubaddressLength;
  if (targetProtocol + targetProtocolLength > bytes.length) return cut();
  let text = prefix ? "ARP, " : "";
  if (!ipProtocol(protocol) || senderProtocolLength !== 4 || targetProtocolLength !== 4 || verbose) {
    text += `${hardwareName(atm)}, ${protocolName(protocol)} (len ${senderProtocolLength}/${targetProtocolLength})`;
    if (!verbose) return `${text}, length ${length}`;
    text += ", ";
  }
  text += `${operationNames.get(operation) ?? `Unknown (${operation})`} `;
  switch (operation) {
    case 1:
      text += `who-has ${protocolAddress(protocol, targetProtocol, targetProtocolLength, "<wrong tplen>")}`;
      if (targetHardwareLength !== 0) text += ` (${atmAddress(targetHardware, targetHardwareLength, targetSubaddressLength)})`;
      text += ` tell ${protocolAddress(protocol, senderProtocol, senderProtocolLength, "<wrong splen>")}`;
      break;
    case 2:
      text += `${protocolAddress(protocol, senderProtocol, senderProtocolLength, "<wrong splen>")} is-at ${atmAddress(senderHardware, senderHardwareLength, senderSubaddressLength)}`;
      break;
    case 8:
      text += `who-is ${atmAddress(targetHardware, targetHardwareLength, targetSubaddressLength)} tell ${atmAddress(senderHardware, senderHardwareLength, senderSubaddressLength)}`;
      break;
    case 9:
      // (tcpdump prints no space before "at")
      text += `${atmAddress(senderHardware, senderHardwareLength, senderSubaddressLength)}at ${protocolAddress(protocol, senderProtocol, senderProtocolLength, "<wrong splen>")}`;
      break;
    case 10:
      text += `for ${protocolAddress(protocol, senderProtocol, senderProtocolLength, "<wrong splen>")}`;
      break;
    default:
      return text + hexLines(bytes, true);
  }
  return `${text}, length ${length}`;
}
