/** Text forms of the addresses pcapng stores as bytes, and back. */

/** The address in bytes [offset, offset + 4). */
export function formatIpv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/**
 * RFC 5952 form as inet_ntop (and so tcpdump) prints it: lower case, the longest run of two or
 * more zero groups as "::", and an IPv4-mapped address as ::ffff:a.b.c.d (RFC 5952 §5).
 * The address is bytes [offset, offset + 16).
 */
export function formatIpv6(bytes: Uint8Array, offset = 0): string {
  const groups = ipv6Groups;
  for (let i = 0; i < 8; i++) groups[i] = (bytes[offset + 2 * i]! << 8) | bytes[offset + 2 * i + 1]!;
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart === 0 && (bestLength === 6 || (bestLength === 5 && groups[5] === 0xffff))) {
    return `::${bestLength === 5 ? "ffff:" : ""}${formatIpv4(bytes, offset + 12)}`;
  }
  let text = "";
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      text += "::";
      i += bestLength - 1;
      continue;
    }
    text += i === 0 || i === bestStart + bestLength ? groups[i]!.toString(16) : `:${groups[i]!.toString(16)}`;
  }
  return text;
}

/** formatIpv6's scratch groups (no array per address). */
const ipv6Groups = new Uint16Array(8);

/** Bytes [offset, offset + length) as two lower-case hex digits each, joined by colons: `00:1a:2b`. */
export function formatHardwareAddress(bytes: Uint8Array, offset = 0, length = bytes.length - offset): string {
  let text = "";
  for (let i = 0; i < length; i++) {
    const byte = bytes[offset + i]!;
    text += i === 0 ? hexDigits[byte >> 4]! + hexDigits[byte & 15]! : `:${hexDigits[byte >> 4]!}${hexDigits[byte & 15]!}`;
  }
  return text;
}

const hexDigits = "0123456789abcdef";

export function parseIpv4(text: string): Buffer | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i]!)) return undefined;
    const value = Number(parts[i]);
    if (value > 255) return undefined;
    bytes[i] = value;
  }
  return bytes;
}

export function parseIpv6(text: string): Buffer | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parseGroups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const groups: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes(".")) {
        const ipv4 = parseIpv4(piece);
        if (!ipv4) return undefined;
        groups.push((ipv4[0]! << 8) | ipv4[1]!, (ipv4[2]! << 8) | ipv4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
        groups.push(parseInt(piece, 16));
      }
    }
    return groups;
  };
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    if (head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    if (head.length !== 8) return undefined;
    groups = head;
  }
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => bytes.writeUInt16BE(group, i * 2));
  return bytes;
}

/** "00:11:22:33:44:55" (also "-" separated) → bytes; `length` is 6 or 8. */
export function parseHardwareAddress(text: string, length: number): Buffer | undefined {
  const parts = text.split(/[:-]/);
  if (parts.length !== length || !parts.every((part) => /^[0-9a-fA-F]{2}$/.test(part))) return undefined;
  return Buffer.from(parts.join(""), "hex");
}
