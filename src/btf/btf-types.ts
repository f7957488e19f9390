/**
 * The BTF type model: plain data, one interface per kind. Types refer to each
 * other by type id (0 is void), exactly as in the binary format, so a list of
 * these objects encodes and decodes without loss.
 */

import { expectOneOf } from "../sys/argument-checks.js";

/** Kind numbers of the binary format (include/uapi/linux/btf.h). */
export const BtfKindNumber = {
  void: 0,
  int: 1,
  pointer: 2,
  array: 3,
  struct: 4,
  union: 5,
  enum: 6,
  forward: 7,
  typedef: 8,
  volatile: 9,
  const: 10,
  restrict: 11,
  function: 12,
  functionProto: 13,
  variable: 14,
  dataSection: 15,
  float: 16,
  declTag: 17,
  typeTag: 18,
  enum64: 19,
} as const;

export type BtfKind = keyof typeof BtfKindNumber;

/** Kind name by kind number; undefined for numbers the format does not define. */
export const btfKindByNumber: readonly BtfKind[] = Object.keys(BtfKindNumber) as BtfKind[];

/** The kernel's upper-case names (INT, PTR, FUNC_PROTO, ...), as bpftool prints them. */
export const btfKindKernelName: Readonly<Record<BtfKind, string>> = {
  void: "UNKN",
  int: "INT",
  pointer: "PTR",
  array: "ARRAY",
  struct: "STRUCT",
  union: "UNION",
  enum: "ENUM",
  forward: "FWD",
  typedef: "TYPEDEF",
  volatile: "VOLATILE",
  const: "CONST",
  restrict: "RESTRICT",
  function: "FUNC",
  functionProto: "FUNC_PROTO",
  variable: "VAR",
  dataSection: "DATASEC",
  float: "FLOAT",
  declTag: "DECL_TAG",
  typeTag: "TYPE_TAG",
  enum64: "ENUM64",
};

export interface BtfVoid {
  kind: "void";
  name: "";
}

export interface BtfInt {
  kind: "int";
  name: string;
  /** Size in bytes. */
  size: number;
  signed: boolean;
  char: boolean;
  bool: boolean;
  /** Bit offset of the value inside the storage (legacy bitfield encoding, normally 0). */
  bitOffset: number;
  /** Number of value bits. */
  bits: number;
}

export interface BtfPointer {
  kind: "pointer";
  name: string;
  type: number;
}

export interface BtfArray {
  kind: "array";
  name: string;
  /** Element type. */
  type: number;
  indexType: number;
  length: number;
}

export interface BtfMember {
  name: string;
  type: number;
  /** Offset from the start of the struct, in bits. */
  bitOffset: number;
  /** Width of a bitfield in bits; 0 for an ordinary member. Only encoded when the struct's kindFlag is set. */
  bitfieldSize: number;
}

export interface BtfStruct {
  kind: "struct";
  name: string;
  size: number;
  /** Members carry bitfield sizes (the kind_flag encoding). */
  kindFlag: boolean;
  members: BtfMember[];
}

export interface BtfUnion {
  kind: "union";
  name: string;
  size: number;
  kindFlag: boolean;
  members: BtfMember[];
}

export interface BtfEnumValue {
  name: string;
  value: number;
}

export interface BtfEnum {
  kind: "enum";
  name: string;
  size: number;
  signed: boolean;
  values: BtfEnumValue[];
}

export interface BtfEnum64Value {
  name: string;
  value: bigint;
}

export interface BtfEnum64 {
  kind: "enum64";
  name: string;
  size: number;
  signed: boolean;
  values: BtfEnum64Value[];
}

export interface BtfForward {
  kind: "forward";
  name: string;
  /** Forward declaration of a union (true) or a struct (false). */
  union: boolean;
}

export interface BtfTypedef {
  kind: "typedef";
  name: string;
  type: number;
}

export interface BtfVolatile {
  kind: "volatile";
  name: string;
  type: number;
}

export interface BtfConst {
  kind: "const";
  name: string;
  type: number;
}

export interface BtfRestrict {
  kind: "restrict";
  name: string;
  type: number;
}

export type BtfFunctionLinkage = "static" | "global" | "extern";
export const functionLinkageNumber: Readonly<Record<BtfFunctionLinkage, number>> = { static: 0, global: 1, extern: 2 };

export interface BtfFunction {
  kind: "function";
  name: string;
  /** The FUNC_PROTO type. */
  type: number;
  linkage: BtfFunctionLinkage;
}

export interface BtfParameter {
  /** Empty for an unnamed parameter; a last parameter with type 0 and no name marks "...". */
  name: string;
  type: number;
}

export interface BtfFunctionProto {
  kind: "functionProto";
  name: string;
  returnType: number;
  parameters: BtfParameter[];
}

export type BtfVariableLinkage = "static" | "global" | "extern";
export const variableLinkageNumber: Readonly<Record<BtfVariableLinkage, number>> = { static: 0, global: 1, extern: 2 };

export interface BtfVariable {
  kind: "variable";
  name: string;
  type: number;
  linkage: BtfVariableLinkage;
}

export interface BtfDataSectionVariable {
  /** The VAR (or FUNC for .ksyms) type. */
  type: number;
  offset: number;
  size: number;
}

export interface BtfDataSection {
  kind: "dataSection";
  name: string;
  size: number;
  variables: BtfDataSectionVariable[];
}

export interface BtfFloat {
  kind: "float";
  name: string;
  size: number;
}

export interface BtfDeclTag {
  kind: "declTag";
  /** The tag text. */
  name: string;
  type: number;
  /** -1 tags the type itself; otherwise the member or parameter index. */
  componentIndex: number;
  /** kind_flag: the tag is an __attribute__ rather than a btf_decl_tag. */
  attribute: boolean;
}

export interface BtfTypeTag {
  kind: "typeTag";
  name: string;
  type: number;
  attribute: boolean;
}

export type BtfType =
  | BtfVoid
  | BtfInt
  | BtfPointer
  | BtfArray
  | BtfStruct
  | BtfUnion
  | BtfEnum
  | BtfForward
  | BtfTypedef
  | BtfVolatile
  | BtfConst
  | BtfRestrict
  | BtfFunction
  | BtfFunctionProto
  | BtfVariable
  | BtfDataSection
  | BtfFloat
  | BtfDeclTag
  | BtfTypeTag
  | BtfEnum64;

/** A type that may appear in a BTF type section (everything but void). */
export type BtfEncodableType = Exclude<BtfType, BtfVoid>;

export type BtfTypeOfKind<K extends BtfKind> = Extract<BtfType, { kind: K }>;

/** Kinds whose only payload is a reference to another type. */
export type BtfModifier = BtfConst | BtfVolatile | BtfRestrict | BtfTypeTag;

export function isModifierKind(kind: BtfKind): boolean {
  if (kind === "const" || kind === "volatile" || kind === "restrict" || kind === "typeTag") return true;
  return notKind(kind, "is modifier kind");
}

export function isCompositeKind(kind: BtfKind): kind is "struct" | "union" {
  if (kind === "struct" || kind === "union") return true;
  return notKind(kind, "is composite kind");
}

export function isEnumKind(kind: BtfKind): kind is "enum" | "enum64" {
  if (kind === "enum" || kind === "enum64") return true;
  return notKind(kind, "is enum kind");
}

const kindNames: ReadonlySet<BtfKind> = new Set(Object.keys(BtfKindNumber) as BtfKind[]);

/** False for a BTF kind; a UsageError for anything else (checked only off the fast path). */
function notKind(kind: unknown, operation: string): false {
  if (!kindNames.has(kind as BtfKind)) expectOneOf(operation, "kind", kind, btfKindByNumber);
  return false;
}

export const voidType: BtfVoid = Object.freeze({ kind: "void", name: "" }) as BtfVoid;
