/**
 * DNS messages as tcpdump -n prints them at default verbosity and with -v:
 * the header flags and counts, the questions of a query, the answers of a
 * response, and tcpdump's marks for malformed and truncated messages; -v adds
 * each answer's owner name and the data of SOA and TSIG answers.
 * Used by PacketSummarizer for UDP and TCP port 53 and UDP port 5353 (mDNS).
 */
import { formatIpv4, formatIpv6 } from "../pcap/address-text.js";
import { decoderCut } from "./decoder-cut.js";
import { printableText } from "./printable-text.js";

/** Record type names as tcpdump prints them; others print as `Type<N>`. */
const typeNames = new Map<number, string>([
  [1, "A"], [2, "NS"], [3, "MD"], [4, "MF"], [5, "CNAME"], [6, "SOA"], [7, "MB"], [8, "MG"], [9, "MR"], [10, "NULL"],
  [11, "WKS"], [12, "PTR"], [13, "HINFO"], [14, "MINFO"], [15, "MX"], [16, "TXT"], [17, "RP"], [18, "AFSDB"], [19, "X25"],
  [20, "ISDN"], [21, "RT"], [22, "NSAP"], [23, "NSAP_PTR"], [24, "SIG"], [25, "KEY"], [26, "PX"], [27, "GPOS"], [28, "AAAA"],
  [29, "LOC"], [30, "NXT"], [31, "EID"], [32, "NIMLOC"], [33, "SRV"], [34, "ATMA"], [35, "NAPTR"], [36, "KX"], [37, "CERT"],
  [38, "A6"], [39, "DNAME"], [40, "SINK"], [41, "OPT"], [42, "APL"], [43, "DS"], [44, "SSHFP"], [45, "IPSECKEY"], [46, "RRSIG"],
  [47, "NSEC"], [48, "DNSKEY"], [99, "SPF"], [100, "UINFO"], [101, "UID"], [102, "GID"], [103, "UNSPEC"], [104, "UNSPECA"],
  [249, "TKEY"], [250, "TSIG"], [251, "IXFR"], [252, "AXFR"], [253, "MAILB"], [254, "MAILA"], [255, "ANY"], [256, "URI"],
]);
const classNames = new Map<number, string>([[1, "IN"], [3, "CHAOS"], [4, "HS"], [255, "ANY"]]);
const opcodeNames = ["", " inv_q", " stat", " op3", " notify", " update", " op6", " op7", " op8", " updateA", " updateD", " updateDA", " updateM", " updateMA", " zoneInit", " zoneRef"];
// tcpdump's table has no space in front of 17 and 21.
const rcodeNames = ["", " FormErr", " ServFail", " NXDomain", " NotImp", " Refused", " YXDomain", " YXRRSet", " NXRRSet", " NotAuth", " NotZone", " Resp11",
  " Resp12", " Resp13", " Resp14", " NoChange", " BadVers", "Resp17", " Resp18", " Resp19", " Resp20", "Resp21", " Resp22", " BadCookie"];

const ednsOptionNames = new Map<number, string>([
  [1, "LLQ"], [2, "UL"], [3, "NSID"], [5, "DAU"], [6, "DHU"], [7, "N3U"], [8, "ECS"], [9, "EXPIRE"], [10, "COOKIE"],
  [11, "KEEPALIVE"], [12, "PADDING"], [13, "CHAIN"], [14, "KEY-TAG"], [16, "CLIENT-TAG"], [17, "SERVER-TAG"],
]);
const dnssecAlgorithms = new Map<number, string>([
  [0, "DELETE"], [1, "RSAMD5"], [2, "DH"], [3, "DS"], [5, "RSASHA1"], [6, "DSA-NSEC3-SHA1"], [7, "RSASHA1-NSEC3-SHA1"], [8, "RSASHA256"],
  [10, "RSASHA512"], [12, "ECC-GOST"], [13, "ECDSAP256SHA256"], [14, "ECDSAP384SHA384"], [15, "ED25519"], [16, "ED448"],
  [252, "INDIRECT"], [253, "PRIVATEDNS"], [254, "PRIVATEOID"],
]);
const dsHashes = new Map<number, string>([[1, "SHA-1"], [2, "SHA-256"], [3, "GOST_R_34.11-94"], [4, "SHA-384"]]);
const nsec3Hashes = new Map<number, string>([[1, "SHA-1"]]);

const MAX_NAME = 1025; // NS_MAXDNAME

/** The message ended inside the captured bytes (tcpdump: ` [|domain]`). */
class Cut {}
const cut = new Cut();

/** A cut where tcpdump reads with GET_… and unwinds its printer (see decoderCut). */
function unwind(): never {
  decoderCut.wholeFrame = true;
  throw cut;
}

/** A message: bytes [start, end) captured, the header at `start`. */
class Reader {
  text = "";
  constructor(readonly data: Uint8Array, readonly start: number, readonly end: number, readonly verbose: boolean) {}

  /** A byte tcpdump checks for before reading it. */
  u8(at: number): number {
    if (at >= this.end || at < 0) throw cut;
    return this.data[at]!;
  }

  /** A byte tcpdump reads without checking first (GET_U_1). */
  getU8(at: number): number {
    if (at >= this.end || at < 0) unwind();
    return this.data[at]!;
  }

  u16(at: number): number {
    if (at + 2 > this.end || at < 0) throw cut;
    return (this.data[at]! << 8) | this.data[at + 1]!;
  }

  u32(at: number): number {
    if (at + 4 > this.end || at < 0) throw cut;
    return ((this.data[at]! << 24) | (this.data[at + 1]! << 16) | (this.data[at + 2]! << 8) | this.data[at + 3]!) >>> 0;
  }

  has(at: number, length: number): boolean {
    return at >= 0 && at + length <= this.end;
  }

  /** The length a label's first byte announces, or -1 (an unknown extended label type is printed). */
  labelLength(at: number): number {
    if (!this.has(at, 1)) return -1;
    const first = this.data[at]!;
    if ((first & 0xc0) === 0x80) {
      this.text += "<BAD LABEL TYPE>";
      return -1;
    }
    if ((first & 0xc0) === 0x40) {
      if ((first & 0x3f) !== 1) {
        this.text += `<ELT ${first & 0x3f}>`;
        return -1;
      }
      if (!this.has(at + 1, 1)) return -1;
      const bits = this.data[at + 1]! || 256;
      return Math.floor((bits + 7) / 8) + 1;
    }
    return first;
  }

  /** Skips a name; the offset after it, or -1. */
  skipName(at: number): number {
    if (!this.has(at, 1)) return -1;
    let label = this.data[at++]!;
    while (label !== 0) {
      const kind = label & 0xc0;
      if (kind === 0xc0) return at + 1;
      if (kind === 0x80) return -1;
      if (kind === 0x40) {
        if ((label & 0x3f) !== 1) return -1;
        if (!this.has(at, 1)) return -1;
        const bits = this.data[at]! || 256;
        at += 1 + Math.floor((bits + 7) / 8);
      } else {
        at += label;
      }
      if (!this.has(at, 1)) return -1;
      label = this.data[at++]!;
    }
    return at;
  }

  /** Characters as tcpdump prints them (M- for 8-bit, ^ for control); false when the bytes end first. */
  chars(at: number, count: number): boolean {
    if (count <= 0) return count === 0;
    const stop = Math.min(this.end, at + count);
    if (stop > at) this.text += printableText(this.data, at, stop);
    return at + count <= this.end;
  }

  bitLabel(at: number): void {
    const bits = this.getU8(at) || 256;
    const limit = at + 1 + Math.floor((bits + 3) / 4);
    this.text += "\\[x";
    let p = at + 1;
    let b = bits;
    for (; p < limit && b > 7; b -= 8, p++) this.text += this.getU8(p).toString(16).padStart(2, "0");
    if (b > 4) this.text += (this.getU8(p) & (0xff << (8 - b)) & 0xff).toString(16).padStart(2, "0");
    else if (b > 0) this.text += (((this.getU8(p) >> 4) & 0x0f) & (0x0f << (4 - b)) & 0x0f).toString(16);
    this.text += `/${bits}]`;
  }

  /**
   * Prints a (maybe compressed) name whose pointers count from `base`; the
   * offset after it in place, or -1. A name before its base (tcpdump's
   * CHAIN option) takes any pointer.
   */
  name(at: number, base = this.start): number {
    let length = this.labelLength(at);
    if (length === -1) return -1;
    let maxOffset = at >= base ? at - base : 0x4000;
    let label = this.u8(at++);
    let compressed = false;
    let rest = -1;
    if ((label & 0xc0) !== 0xc0) rest = at + length;
    if (label === 0) {
      this.text += ".";
      return rest;
    }
    let nameChars = 0;
    while (label !== 0 && at < this.end) {
      if ((label & 0xc0) === 0xc0) {
        if (!compressed) {
          rest = at + 1;
          compressed = true;
        }
        const offset = ((label << 8) | this.u8(at)) & 0x3fff;
        if (offset >= maxOffset) {
          this.text += "<BAD PTR>";
          return -1;
        }
        maxOffset = offset;
        at = base + offset;
        if (!this.has(at, 1)) return -1;
        label = this.data[at]!;
        length = this.labelLength(at);
        if (length === -1) return -1;
        at++;
        continue;
      }
      if ((label & 0xc0) === 0x40) {
        if ((label & 0x3f) !== 1) {
          this.text += `<ELT ${label & 0x3f}>`;
          return -1;
        }
        this.bitLabel(at);
      } else {
        if (nameChars + length <= MAX_NAME) {
          if (!this.chars(at, length)) return -1;
        } else if (nameChars < MAX_NAME) {
          if (!this.chars(at, MAX_NAME - nameChars)) return -1;
        }
        nameChars += length;
      }
      at += length;
      if (nameChars <= MAX_NAME) this.text += ".";
      nameChars++;
      label = this.u8(at);
      length = this.labelLength(at);
      if (length === -1) return -1;
      at++;
      if (!compressed) rest += length + 1;
    }
    if (nameChars > MAX_NAME) this.text += "..";
    return rest;
  }

  private hexBytes(at: number, count: number): void {
    for (let i = 0; i < count; i++) this.text += this.data[at + i]!.toString(16).padStart(2, "0");
  }

  /** One EDNS option of an OPT record (printed only in the answer section at this verbosity); the offset after it. */
  ednsOption(at: number): number {
    const code = this.u16(at);
    this.text += ednsOptionNames.get(code) ?? `Opt${code}`;
    const length = this.u16(at + 2);
    const data = at + 4;
    if (!this.has(data, length)) throw cut;
    if (length === 0) return data;
    this.text += " ";
    const invalid = () => { this.text += " (invalid)"; };
    switch (code) {
      case 5: case 6: case 7: {
        const names = code === 5 ? dnssecAlgorithms : code === 6 ? dsHashes : nsec3Hashes;
        for (let i = 0; i < length; i++) {
          const value = this.data[data + i]!;
          this.text += `${i ? " " : ""}${names.get(value) ?? `Alg_${value}`}`;
        }
        break;
      }
      case 8: {
        if (length < 4) {
          invalid();
          break;
        }
        const family = (this.data[data]! << 8) | this.data[data + 1]!;
        const source = this.data[data + 2]!;
        const scope = this.data[data + 3]!;
        const size = family === 1 ? 4 : family === 2 ? 16 : 0;
        const bytes = Math.ceil(source / 8);
        if (size === 0 || source > size * 8 || scope > size * 8 || length - 4 !== bytes) {
          invalid();
          break;
        }
        const address = new Uint8Array(size);
        address.set(this.data.subarray(data + 4, data + 4 + bytes));
        this.text += `${size === 4 ? formatIpv4(address, 0) : formatIpv6(address, 0)}/${source}/${scope}`;
        break;
      }
      case 9:
        if (length !== 4) invalid();
        else this.text += `${((this.data[data]! << 24) | (this.data[data + 1]! << 16) | (this.data[data + 2]! << 8) | this.data[data + 3]!) >>> 0} sec`;
        break;
      case 10:
        if (length === 8) this.hexBytes(data, 8);
        else if (length >= 16 && length <= 40) {
          this.hexBytes(data, 8);
          this.text += " ";
          this.hexBytes(data + 8, length - 8);
        } else invalid();
        break;
      case 11:
        if (length !== 2) invalid();
        else {
          const value = (this.data[data]! << 8) | this.data[data + 1]!;
          this.text += `${Math.floor(value / 10)}.${value % 10} sec`;
        }
        break;
      case 12:
        this.text += `(${length})`;
        break;
      case 13:
        // tcpdump takes the end of the option as the name's base and ignores a name it cannot print.
        this.name(data, data + length);
        break;
      case 14:
        if (length % 2 !== 0) invalid();
        else for (let i = 0; i < length; i += 2) this.text += `${i ? " " : ""}${(this.data[data + i]! << 8) | this.data[data + i + 1]!}`;
        break;
      default:
        this.hexBytes(data, length);
    }
    return data + length;
  }

  /** A question: ` TYPE[ CLASS]? NAME`; the offset after it, or -1. */
  question(at: number, mdns: boolean): number {
    const after = this.skipName(at);
    if (after === -1 || !this.has(after, 4)) return -1;
    const type = this.u16(after);
    const klass = this.u16(after + 2);
    this.text += ` ${typeNames.get(type) ?? `Type${type}`}`;
    const shown = mdns ? klass & 0x7fff : klass;
    if (shown !== 1) this.text += ` ${classNames.get(shown) ?? `(Class ${shown})`}`;
    if (mdns) this.text += klass & 0x8000 ? " (QU)" : " (QM)";
    this.text += "? ";
    const end = this.name(at);
    return end === -1 ? -1 : end + 4;
  }

  /** A resource record; the offset after it, `end` when it cannot be read, or -1. */
  record(at: number, mdns: boolean): number {
    if (this.verbose) {
      this.text += " ";
      if ((at = this.name(at)) === -1) return -1;
    } else {
      at = this.skipName(at);
    }
    if (at === -1 || !this.has(at, 10)) return this.end;
    const type = this.u16(at);
    const klass = this.u16(at + 2);
    const shown = mdns ? klass & 0x7fff : klass;
    if (shown !== 1 && type !== 41) this.text += ` ${classNames.get(shown) ?? `(Class ${shown})`}`;
    if (mdns && klass & 0x8000) this.text += " (Cache flush)";
    const optFlags = this.u16(at + 6);
    const length = this.u16(at + 8);
    const data = at + 10;
    const rest = data + length;
    this.text += ` ${typeNames.get(type) ?? `Type${type}`}`;
    if (rest > this.end) return -1;
    switch (type) {
      case 1:
        if (!this.has(data, 4)) return -1;
        this.text += ` ${formatIpv4(this.data, data)}`;
        break;
      case 2: case 5: case 12: case 39:
        this.text += " ";
        if (this.name(data) === -1) return -1;
        break;
      case 15:
        this.text += " ";
        if (!this.has(data, 2)) return -1;
        if (this.name(data + 2) === -1) return -1;
        this.text += ` ${this.u16(data)}`;
        break;
      case 16: {
        let p = data;
        while (p < rest) {
          this.text += ' "';
          const count = this.u8(p);
          if (!this.chars(p + 1, count)) return -1;
          p += 1 + count;
          this.text += '"';
        }
        break;
      }
      case 33:
        this.text += " ";
        if (!this.has(data, 6)) return -1;
        if (this.name(data + 6) === -1) return -1;
        this.text += `:${this.u16(data + 4)} ${this.u16(data)} ${this.u16(data + 2)}`;
        break;
      case 28:
        if (!this.has(data, 16)) return -1;
        this.text += ` ${formatIpv6(this.data, data)}`;
        break;
      case 38: {
        const prefixBits = this.u8(data);
        const prefixBytes = prefixBits >> 3;
        if (prefixBits > 128) {
          this.text += ` ${prefixBits}(bad plen)`;
          break;
        }
        if (prefixBits < 128) {
          if (!this.has(data + 1, 16 - prefixBytes)) unwind();
          const address = new Uint8Array(16);
          address.set(this.data.subarray(data + 1, data + 1 + 16 - prefixBytes), prefixBytes);
          this.text += ` ${prefixBits} ${formatIpv6(address, 0)}`;
        }
        if (prefixBits > 0) {
          this.text += " ";
          if (this.name(data + 1 + 16 - prefixBytes) === -1) return -1;
        }
        break;
      }
      case 41:
        this.text += ` UDPsize=${shown}`;
        if (optFlags & 0x8000) this.text += " DO";
        if (data < rest) {
          this.text += " [";
          let p = data;
          while (p < rest) {
            p = this.ednsOption(p);
            if (p < rest) this.text += ",";
          }
          this.text += "]";
        }
        break;
      case 6: {
        if (!this.verbose) break;
        this.text += " ";
        let p = this.name(data);
        if (p === -1) return -1;
        this.text += " ";
        if ((p = this.name(p)) === -1) return -1;
        if (!this.has(p, 20)) return -1;
        for (let i = 0; i < 20; i += 4) this.text += ` ${this.u32(p + i)}`;
        break;
      }
      case 250: {
        if (!this.verbose) break;
        this.text += " ";
        let p = this.name(data);
        if (p === -1) return -1;
        p += 6; // time signed
        if (!this.has(p, 2)) return -1;
        this.text += ` fudge=${this.u16(p)}`;
        p += 2;
        if (!this.has(p, 2)) return -1;
        const macLength = this.u16(p);
        this.text += ` maclen=${macLength}`;
        p += 2 + macLength;
        if (!this.has(p, 2)) return -1;
        this.text += ` origid=${this.u16(p)}`;
        p += 2;
        if (!this.has(p, 2)) return -1;
        this.text += ` error=${this.u16(p)}`;
        p += 2;
        if (!this.has(p, 2)) return -1;
        this.text += ` otherlen=${this.u16(p)}`;
        break;
      }
      case 104:
        if (!this.has(data, length) || !this.chars(data, length)) return -1;
        break;
      case 256:
        if (!this.has(data, length)) return -1;
        if (!this.has(data, 4)) unwind();
        this.text += ` ${this.u16(data)} ${this.u16(data + 2)} `;
        if (!this.chars(data + 4, length >= 4 ? length - 4 : 0x1_0000_0000 + length - 4)) return -1;
        break;
    }
    return rest;
  }
}


/**
 * The text tcpdump prints for a DNS message in `data[start, end)` (the bytes
 * captured) whose length on the wire is `length` (for TCP: with its 2-byte
 * length prefix), with no space in front for UDP; `verbose` as tcpdump -v.
 * Sets decoderCut.wholeFrame where tcpdump's printer unwinds.
 */
export function dnsSummary(data: Uint8Array, start: number, end: number, length: number, overTcp: boolean, mdns: boolean, verbose: boolean): string {
  let prefix = "";
  if (overTcp) {
    if (length < 2) return ` [DNS over TCP: length ${length} < 2] (invalid)`;
    length -= 2;
    if (start + 2 > end) {
      decoderCut.wholeFrame = true;
      return " [|domain]";
    }
    const announced = (data[start]! << 8) | data[start + 1]!;
    if (announced !== length) return ` [prefix length(${announced}) != length(${length})] (invalid)`;
    start += 2;
    prefix = " ";
  }
  if (length < 12) return `${prefix}domain [length ${length} < 12] (invalid)`;
  const r = new Reader(data, start, end, verbose);
  try {
    message(r, length, mdns);
  } catch (error) {
    if (error !== cut) throw error;
    r.text += " [|domain]";
  }
  return prefix + r.text;
}

function message(r: Reader, length: number, mdns: boolean): void {
  const s = r.start;
  if (!r.has(s, 12)) throw cut;
  const flags = r.u16(s + 2);
  let questions = r.u16(s + 4);
  let answers = r.u16(s + 6);
  const authorities = r.u16(s + 8);
  const additional = r.u16(s + 10);
  const id = r.u16(s);
  const opcode = opcodeNames[(flags >> 11) & 0xf]!;
  let at = s + 12;
  if (flags & 0x8000) {
    let rcode = flags & 0xf;
    find: {
      for (let i = 0; i < questions; i++) {
        if ((at = r.skipName(at)) === -1) break find;
        at += 4;
        if (at >= r.end) break find;
      }
      for (let i = 0; i < answers + authorities; i++) {
        if ((at = r.skipName(at)) === -1) break find;
        at += 8;
        if (at >= r.end) break find;
        if (!r.has(at, 2)) break find;
        at += 2 + r.u16(at);
        if (at >= r.end) break find;
      }
      for (let i = 0; i < additional; i++) {
        if ((at = r.skipName(at)) === -1 || !r.has(at, 2)) break find;
        const type = r.u16(at);
        at += 4;
        if (at >= r.end) break find;
        if (type === 41) {
          rcode |= r.u8(at) << 4;
          break find;
        }
        at += 4;
        if (at >= r.end || !r.has(at, 2)) break find;
        at += 2 + r.u16(at);
        if (at >= r.end) break find;
      }
    }
    r.text += `${id}${opcode}${rcode < rcodeNames.length ? rcodeNames[rcode] : ` Resp${rcode}`}${flags & 0x0400 ? "*" : ""}${flags & 0x0080 ? "" : "-"}${flags & 0x0200 ? "|" : ""}${flags & 0x0020 ? "$" : ""}`;
    if (questions !== 1) r.text += ` [${questions}q]`;
    at = s + 12;
    for (let i = 0; i < questions; i++) {
      if (i !== 0) r.text += ",";
      if ((at = r.skipName(at)) === -1) throw cut;
      at += 4;
    }
    r.text += ` ${answers}/${authorities}/${additional}`;
    if (answers) {
      if ((at = r.record(at, mdns)) === -1) throw cut;
      answers--;
      while (at < r.end && answers) {
        r.text += ",";
        if ((at = r.record(at, mdns)) === -1) throw cut;
        answers--;
      }
    }
    if (answers) throw cut;
  } else {
    r.text += `${id}${opcode}${flags & 0x0100 ? "+" : ""}${flags & 0x0010 ? "%" : ""}`;
    if (flags & 0x6cf) r.text += ` [b2&3=0x${flags.toString(16)}]`;
    if (((flags >> 11) & 0xf) === 1) {
      if (questions) r.text += ` [${questions}q]`;
      if (answers !== 1) r.text += ` [${answers}a]`;
    } else {
      if (answers) r.text += ` [${answers}a]`;
      if (questions !== 1) r.text += ` [${questions}q]`;
    }
    if (authorities) r.text += ` [${authorities}n]`;
    if (additional) r.text += ` [${additional}au]`;
    if (questions) {
      if ((at = r.question(at, mdns)) === -1) throw cut;
      questions--;
      while (at < r.end && questions) {
        if ((at = r.question(at, mdns)) === -1) throw cut;
        questions--;
      }
    }
    if (questions) throw cut;
  }
  r.text += ` (${length})`;
}
