/** IP protocol numbers by the names netbpf's tools print and accept (the one table; see /etc/protocols). */
import { expectInteger, expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";

const protocolNumbers: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, icmp6: 58, sctp: 132 };
const protocolNames = new Map(Object.entries(protocolNumbers).map(([name, number]) => [number, name]));

/** "tcp" for 6; the number as text for a protocol without a name here. */
export function protocolName(protocol: number): string {
  const name = protocolNames.get(protocol);
  if (name !== undefined) return name;
  return String(expectInteger("protocol name", "protocol", protocol, 0, 255));
}

/** A protocol name (any case) or a number 0-255; a UsageError otherwise. */
export function parseProtocol(text: string): number {
  const lower = expectString("parse protocol", "text", text).trim().toLowerCase();
  if (Object.hasOwn(protocolNumbers, lower)) return protocolNumbers[lower]!;
  if (/^\d{1,3}$/.test(lower) && Number(lower) <= 255) return Number(lower);
  throw new UsageError("parse protocol", `unknown protocol ${JSON.stringify(text)}`, `use ${Object.keys(protocolNumbers).join(", ")} or a number 0-255`);
}
