import type { SourceSpan } from "./filter-syntax-error.js";

/** Protocol qualifier as written (canonical keyword; "link" stands for ether/fddi/tr/wlan/ppp/slip). */
export type ProtocolQualifier = string;

export type DirectionQualifier =
  | "src" | "dst" | "src or dst" | "src and dst" | "addr1" | "addr2" | "addr3" | "addr4" | "ra" | "ta";

export type TypeQualifier = "host" | "net" | "port" | "portrange" | "gateway" | "proto" | "protochain";

/** The qualifiers in force for an id; undefined parts were not written (libpcap's Q_DEFAULT). */
export interface Qualifiers {
  protocol?: ProtocolQualifier;
  direction?: DirectionQualifier;
  type?: TypeQualifier;
  /** True after a bare protocol, a relation or another primitive: a bare id may not follow. */
  undefined?: boolean;
}

/** What an id is, as the scanner saw it. */
export type IdValue =
  | { kind: "number"; value: number; text: string }
  | { kind: "ipv4"; text: string; prefixLength?: number; mask?: string; maskSpan?: SourceSpan }
  | { kind: "ipv6"; bytes: Uint8Array; text: string; prefixLength?: number }
  | { kind: "mac"; bytes: Uint8Array; text: string }
  | { kind: "name"; text: string };

export type ArithmeticOperator = "+" | "-" | "*" | "/" | "%" | "&" | "|" | "^" | "<<" | ">>";
export type RelationOperator = ">" | ">=" | "=" | "<=" | "<" | "!=";

export type ArithmeticNode = (
  | { kind: "number"; value: number }
  | { kind: "length" }
  | { kind: "load"; protocol: string; index: ArithmeticNode; size: 1 | 2 | 4 }
  | { kind: "binary"; operator: ArithmeticOperator; left: ArithmeticNode; right: ArithmeticNode }
  | { kind: "negate"; operand: ArithmeticNode }
) & { span: SourceSpan };

export type EncapsulationKind = "vlan" | "mpls" | "pppoes" | "geneve" | "vxlan";

export type FilterNode = (
  | { kind: "and" | "or"; left: FilterNode; right: FilterNode }
  | { kind: "not"; operand: FilterNode }
  /** `head id`, or a bare id inheriting the qualifiers of what came before. */
  | { kind: "primitive"; qualifiers: Qualifiers; id: IdValue; idSpan: SourceSpan }
  /** A bare protocol name: `tcp`, `ip6`, `arp`, ... */
  | { kind: "protocol"; protocol: string }
  | { kind: "relation"; operator: RelationOperator; left: ArithmeticNode; right: ArithmeticNode }
  | { kind: "broadcast" | "multicast"; protocol?: string }
  | { kind: "length"; operator: "less" | "greater"; value: number }
  | { kind: "direction"; direction: "inbound" | "outbound" }
  | { kind: "encapsulation"; encapsulation: EncapsulationKind; value?: number; valueSpan?: SourceSpan }
  | { kind: "pppoed" }
  | { kind: "ifindex"; value: number }
  | { kind: "byte"; offset: number; operator: "&" | "|" | "<" | ">" | "="; value: number }
  | { kind: "llc"; subtype?: string }
  | { kind: "unsupported"; keyword: string }
) & { span: SourceSpan };

export type FilterNodeKind = FilterNode["kind"];
