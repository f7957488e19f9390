/**
 * IPv4 and IPv6 addresses and CIDR prefixes as firewall and limiter rules
 * take them, and their LPM trie keys.
 */
import { isIPv4, isIPv6 } from "node:net";
import { lpmKey, type LpmKey } from "../core/codec.js";
import { formatIpv4, formatIpv6 } from "../pcap/address-text.js";
import { UsageError } from "../sys/errors.js";
import { argumentError, expectBytes, expectInteger, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";

export type AddressFamily = 4 | 6;

/** A prefix in canonical form: host bits cleared, e.g. 10.0.0.0/8 or 2001:db8::/32. */
export interface AddressPrefix {
  family: AddressFamily;
  /** Network-order address bytes (4 or 16), host bits zero. */
  address: Buffer;
  prefixLength: number;
}

export const ipv4PrefixKey = lpmKey(4);
export const ipv6PrefixKey = lpmKey(16);

function ipv4Bytes(text: string): Buffer {
  return Buffer.from(text.split(".").map(Number));
}

function ipv6Bytes(text: string): Buffer {
  let groupsText = text;
  let tail: number[] = [];
  if (text.includes(".")) {
    const colon = text.lastIndexOf(":");
    const v4 = ipv4Bytes(text.slice(colon + 1));
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    groupsText = text.slice(0, colon + 1);
    if (!groupsText.endsWith("::")) groupsText = groupsText.slice(0, -1);
  }
  const split = (part: string) => (part === "" ? [] : part.split(":").map((group) => parseInt(group, 16)));
  let groups: number[];
  if (groupsText.includes("::")) {
    const [left, right] = groupsText.split("::") as [string, string];
    const leftGroups = split(left);
    const rightGroups = split(right);
    groups = [...leftGroups, ...new Array<number>(8 - tail.length - leftGroups.length - rightGroups.length).fill(0), ...rightGroups, ...tail];
  } else {
    groups = [...split(groupsText), ...tail];
  }
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => bytes.writeUInt16BE(group, i * 2));
  return bytes;
}

/**
 * Parses "192.0.2.1", "10.0.0.0/8", "2001:db8::/32" or "::1". Host bits set
 * under the mask are an error (10.1.0.0/8 is probably a typing mistake).
 * Throws a UsageError naming `what` (e.g. "line 12").
 */
export function parseAddressPrefix(address: string, what = "address"): AddressPrefix {
  expectString("parse address", "address", address);
  expectString("parse address", "what", what);
  const text = address;
  const trimmed = text.trim();
  const slash = trimmed.indexOf("/");
  const addressText = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const lengthText = slash < 0 ? undefined : trimmed.slice(slash + 1);
  const family: AddressFamily | undefined = isIPv4(addressText) ? 4 : isIPv6(addressText) ? 6 : undefined;
  if (family === undefined) {
    throw new UsageError("parse address", `${what}: ${JSON.stringify(text)} is not an IPv4 or IPv6 address or CIDR prefix`, "write e.g. 192.0.2.1, 10.0.0.0/8 or 2001:db8::/32");
  }
  const bits = family === 4 ? 32 : 128;
  let prefixLength = bits;
  if (lengthText !== undefined) {
    if (!/^\d{1,3}$/.test(lengthText) || Number(lengthText) > bits) {
      throw new UsageError("parse address", `${what}: prefix length in ${JSON.stringify(text)} must be 0-${bits}`);
    }
    prefixLength = Number(lengthText);
  }
  const bytes = family === 4 ? ipv4Bytes(addressText) : ipv6Bytes(addressText);
  const masked = maskAddress(bytes, prefixLength);
  if (!masked.equals(bytes)) {
    throw new UsageError("parse address", `${what}: ${JSON.stringify(text)} has host bits set under /${prefixLength}`, `did you mean ${formatAddressPrefix({ family, address: masked, prefixLength })}?`);
  }
  return { family, address: masked, prefixLength };
}

/** A prefix a caller gives as an object: family 4 or 6, a Buffer of 4 or 16 bytes, a length in range; `name` in errors. */
export function expectAddressPrefix(operation: string, name: string, value: unknown): AddressPrefix {
  const prefix = expectObject<AddressPrefix>(operation, name, value);
  const family = expectOneOf(operation, `${name}.family`, prefix.family, [4, 6]);
  const size = family === 4 ? 4 : 16;
  if (!Buffer.isBuffer(prefix.address) || prefix.address.length !== size) throw argumentError(operation, `${name}.address`, `a Buffer of ${size} bytes`, prefix.address);
  expectInteger(operation, `${name}.prefixLength`, prefix.prefixLength, 0, size * 8);
  return prefix;
}

function maskAddress(address: Buffer, prefixLength: number): Buffer {
  const out = Buffer.from(address);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLength - i * 8));
    out[i]! &= keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
  }
  return out;
}

export function formatAddress(family: AddressFamily, address: Buffer): string {
  return family === 4 ? formatIpv4(address) : formatIpv6(address);
}

export function formatAddressPrefix(prefix: AddressPrefix): string {
  expectObject("format address prefix", "prefix", prefix);
  expectOneOf("format address prefix", "prefix.family", prefix.family, [4, 6]);
  expectBytes("format address prefix", "prefix.address", prefix.address);
  expectInteger("format address prefix", "prefix.prefixLength", prefix.prefixLength, 0, prefix.family === 4 ? 32 : 128);
  const text = formatAddress(prefix.family, prefix.address);
  return prefix.prefixLength === (prefix.family === 4 ? 32 : 128) ? text : `${text}/${prefix.prefixLength}`;
}

export function prefixKey(prefix: AddressPrefix): LpmKey {
  return { prefixLength: prefix.prefixLength, address: prefix.address };
}

/** Parses a blocklist: one address or prefix per line; `#` starts a comment; blank lines are skipped. */
export function parseAddressList(list: string, source = "list"): AddressPrefix[] {
  expectString("parse address list", "list", list);
  expectString("parse address list", "source", source);
  const out: AddressPrefix[] = [];
  const lines = list.split(/\r?\n/);
  lines.forEach((line, index) => {
    const content = line.replace(/[#;].*$/, "").trim();
    if (content.length === 0) return;
    out.push(parseAddressPrefix(content, `${source} line ${index + 1}`));
  });
  return out;
}
