/**
 * BOOTP and DHCP messages (UDP ports 67 and 68) as tcpdump 4.99 -n prints
 * them: the operation, the client's hardware address and the length, and
 * with -v the header fields, sname and file, and the vendor area: RFC 1048
 * options (DHCP) by tcpdump's table of names and formats, or the CMU
 * vendor fields; with tcpdump's ` [|bootp]` where the message is cut.
 */
import { formatIpv4 } from "../pcap/address-text.js";
import { printableText } from "./printable-text.js";
import { decoderCut } from "./decoder-cut.js";

/**
 * tcpdump's option names, each after the letter of its format: i addresses, l unsigned and L signed
 * 32-bit numbers, s 16-bit numbers, b bytes, B booleans, p address pairs, a text, $ options of their own.
 */
const optionTable = new Map<number, string>([
  [0, " PAD"], [255, " END"], [1, "iSubnet-Mask"], [2, "LTime-Zone"], [3, "iDefault-Gateway"], [4, "iTime-Server"], [5, "iIEN-Name-Server"], [6, "iDomain-Name-Server"],
  [7, "iLOG"], [8, "iCS"], [9, "iLPR-Server"], [10, "iIM"], [11, "iRL"], [12, "aHostname"], [13, "sBS"], [14, "aDP"], [15, "aDomain-Name"],
  [16, "iSS"], [17, "aRP"], [18, "aEP"], [19, "BIPF"], [20, "BSRT"], [21, "pPF"], [22, "sRSZ"], [23, "bTTL"], [24, "lMTU-Timeout"],
  [25, "sMTU-Table"], [26, "sMTU"], [27, "BLSN"], [28, "iBR"], [29, "BMD"], [30, "BMS"], [31, "BRouter-Discovery"], [32, "iRSA"],
  [33, "pStatic-Route"], [34, "BUT"], [35, "lAT"], [36, "BIE"], [37, "bTT"], [38, "lKI"], [39, "BKG"], [40, "aYD"], [41, "iYS"], [42, "iNTP"],
  [43, "bVendor-Option"], [44, "iNetbios-Name-Server"], [45, "iWDD"], [46, "$Netbios-Node"], [47, "aNetbios-Scope"], [48, "iXFS"], [49, "iXDM"],
  [50, "iRequested-IP"], [51, "lLease-Time"], [52, "$OO"], [53, "bDHCP-Message"], [54, "iServer-ID"], [55, "bParameter-Request"], [56, "aMSG"],
  [57, "sMSZ"], [58, "lRN"], [59, "lRB"], [60, "aVendor-Class"], [61, "$Client-ID"], [64, "sN+D"], [65, "iN+S"], [66, "aTFTP"], [67, "aBF"],
  [68, "iMH"], [69, "iSMTP"], [70, "iPOP3"], [71, "iNNTP"], [72, "iWWW"], [73, "iFG"], [74, "iIRC"], [75, "iSTS"], [76, "iSTDA"],
  [77, "$User-Class"], [78, "bSLP-DA"], [79, "bSLP-SCOPE"], [80, "aSLP-NA"], [81, "$FQDN"], [82, "$Agent-Information"], [83, "bARMT"],
  [88, "aTZSTR"], [89, "bFQDNS"], [90, "bAUTH"], [91, "LLast-Transaction-Time"], [92, "iAssociated-IP"], [93, "sARCH"], [94, "bNDI"],
  [95, "aLDAP"], [97, "bGUID"], [98, "aUAP"], [100, "aPOSIX-TZ"], [101, "aTZ-Name"], [112, "iNI"], [113, "aNITAG"], [114, "aURL"],
  [116, "BNOAUTO"], [117, "sNSSEARCH"], [118, "iSUBNET"], [121, "$Classless-Static-Route"], [150, "iTFTP-Server-Address"], [161, "aMUD-URL"],
  [249, "$Classless-Static-Route-Microsoft"],
]);
const dhcpMessageNames = ["", "Discover", "Offer", "Request", "Decline", "ACK", "NACK", "Release", "Inform", "", "LeaseQuery", "LeaseUnassigned", "LeaseUnknown", "LeaseActive"];
const hardwareTypeNames = new Map([[1, "ether"], [6, "ieee802"], [7, "arcnet"], [15, "frelay"], [23, "strip"], [24, "ieee1394"]]);
const netbiosNodeNames = new Map([[1, "b-node"], [2, "p-node"], [4, "m-node"], [8, "h-node"]]);
const overloadNames = ["", "file", "sname", "file+sname"];
const agentSuboptionNames = ["", "Circuit-ID", "Remote-ID", "", "", "", "Subscriber-ID"];

/** Thrown when a field ends past the captured bytes (tcpdump: ` [|bootp]`). */
const cut = new Error("cut");

const empty: Uint8Array = new Uint8Array(0);
/** The message being described: bytes [start, end) were captured. One message at a time, so no object per message. */
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

function u8(at: number): number {
  get(at, 1);
  return bytes[start + at]!;
}

function u16(at: number): number {
  get(at, 2);
  return (bytes[start + at]! << 8) | bytes[start + at + 1]!;
}

function u32(at: number): number {
  get(at, 4);
  return ((bytes[start + at]! << 24) | (bytes[start + at + 1]! << 16) | (bytes[start + at + 2]! << 8) | bytes[start + at + 3]!) >>> 0;
}

function address(at: number): string {
  get(at, 4);
  return formatIpv4(bytes, start + at);
}

function hex2(value: number): string {
  return value < 16 ? `0${value.toString(16)}` : value.toString(16);
}

function mac(at: number): string {
  get(at, 6);
  const p = start + at;
  return `${hex2(bytes[p]!)}:${hex2(bytes[p + 1]!)}:${hex2(bytes[p + 2]!)}:${hex2(bytes[p + 3]!)}:${hex2(bytes[p + 4]!)}:${hex2(bytes[p + 5]!)}`;
}

/**
 * The text tcpdump prints for a BOOTP/DHCP message in `data[messageStart, messageEnd)` (the bytes
 * captured) whose length on the wire is `length`; ` [|bootp]` when not even its first byte was captured.
 */
export function bootpSummary(data: Uint8Array, messageStart: number, messageEnd: number, length: number, verbose: boolean): string {
  bytes = data;
  start = messageStart;
  end = messageEnd;
  text = "";
  try {
    const operation = u8(0);
    add(`BOOTP/DHCP, ${operation === 1 ? "Request" : operation === 2 ? "Reply" : `unknown (0x${hex2(operation)})`}`);
    get(1, 2);
    const hardwareType = bytes[start + 1]!;
    const hardwareLength = bytes[start + 2]!;
    const ethernet = hardwareType === 1 && hardwareLength === 6;
    if (ethernet && operation === 1) add(` from ${mac(28)}`);
    add(`, length ${length}`);
    if (verbose) details(hardwareType, hardwareLength, ethernet);
  } catch (error) {
    if (error !== cut) throw error;
    add(" [|bootp]");
  }
  bytes = empty;
  return text;
}

/** What -v adds after the length. */
function details(hardwareType: number, hardwareLength: number, ethernet: boolean): void {
  need(8, 2);
  if (hardwareType !== 1) add(`, htype ${hardwareType}`);
  if (!ethernet) add(`, hlen ${hardwareLength}`);
  const hops = u8(3);
  if (hops) add(`, hops ${hops}`);
  const xid = u32(4);
  if (xid) add(`, xid 0x${xid.toString(16)}`);
  const seconds = u16(8);
  if (seconds) add(`, secs ${seconds}`);
  add(`, Flags [${u16(10) & 0x8000 ? "Broadcast" : "none"}]`);
  if (u32(12)) add(`\n\t  Client-IP ${address(12)}`);
  if (u32(16)) add(`\n\t  Your-IP ${address(16)}`);
  if (u32(20)) add(`\n\t  Server-IP ${address(20)}`);
  if (u32(24)) add(`\n\t  Gateway-IP ${address(24)}`);
  if (ethernet) add(`\n\t  Client-Ethernet-Address ${mac(28)}`);
  nameField(44, "sname", 64);
  nameField(108, "file", 128);
  need(236, 4);
  const magic = u32(236);
  if (magic === 0x63825363) rfc1048Options();
  else if (magic === 0x434d5500) cmuFields();
  else if (magic !== 0) add(`\n\t  Vendor-#0x${magic.toString(16)}`);
}

/** sname or file, when its first byte is not NUL: up to the NUL; none within the field (or the capture) is a cut. */
function nameField(offset: number, name: string, size: number): void {
  if (u8(offset) === 0) return;
  add(`\n\t  ${name} "`);
  let i = 0;
  while (i < size && start + offset + i < end && bytes[start + offset + i] !== 0) i++;
  add(printableText(bytes, start + offset, start + offset + i));
  add('"');
  if (i === size || start + offset + i >= end) throw cut;
}

/** The text so far (kept when a field turns out cut). */
let text = "";

function add(more: string): void {
  text += more;
}

function cmuFields(): void {
  add(" vend-cmu");
  need(240, 4);
  const flags = bytes[start + 240]!;
  if ((flags & ~1) !== 0) add(` F:0x${flags.toString(16)}`);
  for (let i = 0; i < cmuAddressOffsets.length; i++) {
    const offset = cmuAddressOffsets[i]!;
    need(offset, 4);
    if (u32(offset) !== 0) add(` ${offset === 244 && (flags & 1) === 0 ? "SM*" : cmuAddressNames[i]}:${address(offset)}`);
  }
}

/** The CMU vendor area's addresses in tcpdump's order: gateway, subnet mask (SM* when the flags do not mark it valid), name servers, IEN-116 servers, time servers. */
const cmuAddressOffsets = [248, 244, 252, 256, 260, 264, 268, 272];
const cmuAddressNames = ["DG", "SM", "NS1", "NS2", "IEN1", "IEN2", "TS1", "TS2"];

function rfc1048Options(): void {
  add("\n\t  Vendor-rfc1048 Extensions\n\t    Magic Cookie 0x63825363");
  let at = 240;
  while (start + at < end) {
    const tag = bytes[start + at++]!;
    if (tag === 0) continue;
    if (tag === 255) return;
    const entry = optionTable.get(tag) ?? "?Unknown";
    let format = entry.charCodeAt(0);
    let length = u8(at++);
    add(`\n\t    ${entry.slice(1)} (${tag}), length ${length}${length > 0 ? ": " : ""}`);
    need(at, length);
    let p = start + at;
    const optionEnd = p + length;
    at += length;
    if (tag === 53 && length === 1) {
      const type = bytes[p]!;
      add(dhcpMessageNames[type] || `Unknown (${type})`);
      continue;
    }
    if (tag === 55) {
      for (let i = 0; p < optionEnd; i++, p++) {
        const requested = bytes[p]!;
        add(`${i % 4 === 0 ? "\n\t      " : ", "}${(optionTable.get(requested) ?? "?Unknown").slice(1)} (${requested})`);
      }
      continue;
    }
    if (format === 0x3f /* ? */) format = length & 1 ? 0x62 /* b */ : length & 2 ? 0x73 /* s */ : 0x6c; /* l */
    let first = true;
    switch (format) {
      case 0x61: // a
        add(`"${printableText(bytes, p, optionEnd)}"`);
        p = optionEnd;
        break;
      case 0x69: // i
      case 0x6c: // l
      case 0x4c: // L
        for (; optionEnd - p >= 4; p += 4, first = false) {
          const value = ((bytes[p]! << 24) | (bytes[p + 1]! << 16) | (bytes[p + 2]! << 8) | bytes[p + 3]!);
          add(`${first ? "" : ","}${format === 0x69 ? formatIpv4(bytes, p) : format === 0x4c ? value : value >>> 0}`);
        }
        break;
      case 0x70: // p
        for (; optionEnd - p >= 8; p += 8, first = false) add(`${first ? "" : ","}(${formatIpv4(bytes, p)}:${formatIpv4(bytes, p + 4)})`);
        break;
      case 0x73: // s
        for (; optionEnd - p >= 2; p += 2, first = false) add(`${first ? "" : ","}${(bytes[p]! << 8) | bytes[p + 1]!}`);
        break;
      case 0x42: // B
        for (; p < optionEnd; p++, first = false) {
          const value = bytes[p]!;
          add(`${first ? "" : ","}${value === 0 ? "N" : value === 1 ? "Y" : `${value}?`}`);
        }
        break;
      case 0x62: // b
        for (; p < optionEnd; p++, first = false) add(`${first ? "" : "."}${bytes[p]}`);
        break;
      default:
        p = specialOption(tag, p, optionEnd);
    }
    if (p < optionEnd) add(`\n\t  trailing data length ${optionEnd - p}`);
  }
}

/** Options with a format of their own ($): prints the data at [p, optionEnd); where printing stopped. */
function specialOption(tag: number, p: number, optionEnd: number): number {
  const length = optionEnd - p;
  switch (tag) {
    case 46:
    case 52: {
      if (length < 1) {
        add("[ERROR: length < 1 bytes]");
        return p;
      }
      const value = bytes[p]!;
      add((tag === 46 ? netbiosNodeNames.get(value) : overloadNames[value]) || `#${value}`);
      return p + 1;
    }
    case 81: {
      if (length < 3) {
        add("[ERROR: length < 3 bytes]");
        return optionEnd;
      }
      const flags = bytes[p]!;
      if (flags & 0xf0) add(`[ERROR: MBZ nibble 0x${((flags & 0xf0) >> 4).toString(16)} != 0] `);
      if (flags & 0x0f) add(`[${flags & 1 ? "S" : ""}${flags & 2 ? "O" : ""}${flags & 4 ? "E" : ""}${flags & 8 ? "N" : ""}] `);
      if (bytes[p + 1] || bytes[p + 2]) add(`${bytes[p + 1]}/${bytes[p + 2]} `);
      add(`"${printableText(bytes, p + 3, optionEnd)}"`);
      return optionEnd;
    }
    case 61: {
      if (length < 1) {
        add("[ERROR: length < 1 bytes]");
        return p;
      }
      const type = bytes[p++]!;
      if (type === 0) {
        add(`"${printableText(bytes, p, optionEnd)}"`);
        return optionEnd;
      }
      add(`${hardwareTypeNames.get(type) ?? `hardware-type ${type},`} `);
      for (let first = true; p < optionEnd; p++, first = false) add(`${first ? "" : ":"}${hex2(bytes[p]!)}`);
      return p;
    }
    case 82:
      while (optionEnd - p >= 2) {
        const suboption = bytes[p]!;
        const size = bytes[p + 1]!;
        p += 2;
        const name = agentSuboptionNames[suboption] || "Unknown";
        if (size > optionEnd - p) {
          add(`\n\t      ${name} SubOption ${suboption}, length ${size}: length goes past end of option`);
          return optionEnd;
        }
        add(`\n\t      ${name} SubOption ${suboption}, length ${size}: `);
        if (suboption === 1 || suboption === 2 || suboption === 6) add(printableText(bytes, p, p + size));
        else add(hexWords(p, size));
        p += size;
      }
      return p;
    case 121:
    case 249: {
      if (length < 5) {
        add("[ERROR: length < 5 bytes]");
        return optionEnd;
      }
      for (let first = true; p < optionEnd; first = false) {
        if (!first) add(",");
        const width = bytes[p++]!;
        if (width > 32) {
          add(`[ERROR: Mask width (${width}) > 32]`);
          return optionEnd;
        }
        const significant = (width + 7) >> 3;
        if (optionEnd - p < significant + 4) {
          add(`[ERROR: Remaining length (${optionEnd - p}) < ${significant + 4} bytes]`);
          return optionEnd;
        }
        add("(");
        if (width === 0) add("default");
        else {
          for (let i = 0; i < significant; i++) add(`${i > 0 ? "." : ""}${bytes[p++]}`);
          for (let i = significant; i < 4; i++) add(".0");
          add(`/${width}`);
        }
        add(`:${formatIpv4(bytes, p)})`);
        p += 4;
      }
      return p;
    }
    case 77: {
      if (length < 2) {
        add("[ERROR: length < 2 bytes]");
        return optionEnd;
      }
      for (let instance = 1; p < optionEnd; instance++) {
        const size = bytes[p++]!;
        add(`\n\t      instance#${instance}: `);
        if (size === 0) {
          add("[ERROR: suboption length must be non-zero]");
          return optionEnd;
        }
        if (optionEnd - p < size) {
          add("[ERROR: invalid option]");
          return optionEnd;
        }
        add(`"${printableText(bytes, p, p + size)}", length ${size}`);
        p += size;
      }
      return p;
    }
  }
  return p;
}

/** tcpdump's hex dump of unknown data: lines of 8 two-byte words, each starting "\n\t\t0xOFFSET: ". */
function hexWords(p: number, size: number): string {
  let text = "";
  let i = 0;
  for (; i + 1 < size; i += 2) {
    if (i % 16 === 0) text += `\n\t\t0x${i.toString(16).padStart(4, "0")}: `;
    text += ` ${hex2(bytes[p + i]!)}${hex2(bytes[p + i + 1]!)}`;
  }
  if (i < size) {
    if (i % 16 === 0) text += `\n\t\t0x${i.toString(16).padStart(4, "0")}: `;
    text += ` ${hex2(bytes[p + i]!)}`;
  }
  return text;
}
