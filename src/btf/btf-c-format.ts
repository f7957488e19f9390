import type { Btf } from "./btf.js";
import { BtfFormatError } from "./btf-format-error.js";
import { expectBtfType } from "./expect-btf.js";
import { expectBoolean, expectObject, expectString } from "../sys/argument-checks.js";

const maximumDepth = 64;
/** Most types one formatting call writes out; far beyond any real type, it stops pathological input. */
const maximumTypesWritten = 200_000;

interface FormatContext {
  options: CFormatOptions;
  written: number;
  /** Anonymous types being written inline right now: meeting one again means it contains itself. */
  expanding: Set<number>;
}

export interface CFormatOptions {
  /** Write anonymous struct/union/enum bodies inline (default true); otherwise "struct /* anonymous [id] *\/". */
  inlineAnonymous?: boolean;
  /** Add a comment with the byte offset (and bit offset of bitfields) to each member of definitions. */
  offsets?: boolean;
  /** Indentation prefix of the first line. */
  indent?: string;
}

function checkFormatOptions(operation: string, options: CFormatOptions): void {
  const { inlineAnonymous, offsets, indent } = expectObject<CFormatOptions>(operation, "options", options, true);
  expectBoolean(operation, "options.inlineAnonymous", inlineAnonymous, true);
  expectBoolean(operation, "options.offsets", offsets, true);
  if (indent !== undefined) expectString(operation, "options.indent", indent);
}

function join(base: string, declarator: string): string {
  if (declarator === "") return base;
  if (declarator.startsWith("[")) return base + declarator;
  return `${base} ${declarator}`;
}

/**
 * Format a type as a C type expression around an optional declarator:
 * `formatCType(btf, id)` gives "struct sock *", `formatCType(btf, id, "x")` gives "char x[16]".
 */
export function formatCType(btf: Btf, id: number, declarator = "", options: CFormatOptions = {}): string {
  expectBtfType("format C type", btf, id);
  expectString("format C type", "declarator", declarator);
  checkFormatOptions("format C type", options);
  return formatType(btf, id, declarator, newContext(options), options.indent ?? "", 0);
}

function newContext(options: CFormatOptions): FormatContext {
  return { options, written: 0, expanding: new Set() };
}

function formatType(btf: Btf, id: number, declarator: string, context: FormatContext, indent: string, depth: number): string {
  if (depth > maximumDepth) throw new BtfFormatError(`type nests deeper than ${maximumDepth} levels`, { typeId: id }, "format BTF type as C");
  if (++context.written > maximumTypesWritten) throw new BtfFormatError(`type expands to more than ${maximumTypesWritten} types`, { typeId: id }, "format BTF type as C");
  const options = context.options;
  const type = btf.type(id);
  const next = (inner: number, innerDeclarator: string) => formatType(btf, inner, innerDeclarator, context, indent, depth + 1);
  switch (type.kind) {
    case "void":
      return join("void", declarator);
    case "int": case "float": case "typedef":
      return join(type.name, declarator);
    case "struct": case "union": case "enum": case "enum64": {
      const keyword = type.kind === "enum64" ? "enum" : type.kind;
      if (type.name !== "") return join(`${keyword} ${type.name}`, declarator);
      if ((options.inlineAnonymous ?? true) && !context.expanding.has(id)) return join(formatBody(btf, id, context, indent, depth + 1), declarator);
      return join(`${keyword} /* anonymous [${id}] */`, declarator);
    }
    case "forward":
      return join(`${type.union ? "union" : "struct"} ${type.name}`, declarator);
    case "pointer": {
      const pointee = btf.kindOf(type.type);
      const wrapped = pointee === "array" || pointee === "functionProto" ? `(*${declarator})` : `*${declarator}`;
      return next(type.type, wrapped);
    }
    case "array":
      return next(type.type, `${declarator}[${type.length}]`);
    case "functionProto": {
      const parameters = type.parameters.map((parameter, index) =>
        parameter.type === 0 && parameter.name === "" && index === type.parameters.length - 1 ? "..." : next(parameter.type, parameter.name),
      );
      return next(type.returnType, `${declarator}(${parameters.length === 0 ? "void" : parameters.join(", ")})`);
    }
    case "const": case "volatile": case "restrict": {
      if (btf.kindOf(type.type) === "pointer") return next(type.type, declarator === "" ? type.kind : `${type.kind} ${declarator}`);
      return `${type.kind} ${next(type.type, declarator)}`;
    }
    case "typeTag":
      return next(type.type, declarator);
    case "function":
      return next(type.type, declarator === "" ? type.name : declarator);
    case "variable":
      return next(type.type, declarator === "" ? type.name : declarator);
    case "declTag":
      return `/* decl_tag "${type.name}" on [${type.type}]${type.componentIndex >= 0 ? ` component ${type.componentIndex}` : ""} */`;
    case "dataSection":
      return `/* section ${type.name} */`;
  }
}

function formatBody(btf: Btf, id: number, context: FormatContext, indent: string, depth: number): string {
  context.expanding.add(id);
  try {
    return formatBodyOf(btf, id, context, indent, depth);
  } finally {
    context.expanding.delete(id);
  }
}

function formatBodyOf(btf: Btf, id: number, context: FormatContext, indent: string, depth: number): string {
  const options = context.options;
  const type = btf.type(id);
  const inner = indent + "\t";
  if (type.kind === "struct" || type.kind === "union") {
    const lines = type.members.map((member) => {
      const declaration = formatType(btf, member.type, member.name, context, inner, depth + 1);
      const bitfield = member.bitfieldSize > 0 ? `: ${member.bitfieldSize}` : "";
      const comment = options.offsets
        ? member.bitfieldSize > 0 || member.bitOffset % 8 !== 0
          ? ` /* ${Math.floor(member.bitOffset / 8)}:${member.bitOffset % 8} */`
          : ` /* ${member.bitOffset / 8} */`
        : "";
      return `${inner}${declaration}${bitfield};${comment}`;
    });
    const name = type.name === "" ? type.kind : `${type.kind} ${type.name}`;
    return `${name} {\n${lines.join("\n")}${lines.length > 0 ? "\n" : ""}${indent}}`;
  }
  if (type.kind === "enum" || type.kind === "enum64") {
    const suffix = type.kind === "enum64" ? (type.signed ? "LL" : "ULL") : "";
    const lines = (type.values as { name: string; value: number | bigint }[]).map((value) => `${inner}${value.name} = ${value.value}${suffix},`);
    return `${type.name === "" ? "enum" : `enum ${type.name}`} {\n${lines.join("\n")}${lines.length > 0 ? "\n" : ""}${indent}}`;
  }
  return formatType(btf, id, "", context, indent, depth);
}

/**
 * Format a type as a C definition: structs, unions and enums with their bodies,
 * typedefs and functions as declarations. Ends with ";".
 */
export function formatCDefinition(btf: Btf, id: number, options: CFormatOptions = {}): string {
  expectBtfType("format C definition", btf, id);
  checkFormatOptions("format C definition", options);
  const type = btf.type(id);
  const indent = options.indent ?? "";
  const context = newContext(options);
  switch (type.kind) {
    case "struct": case "union": case "enum": case "enum64":
      return `${indent}${formatBody(btf, id, context, indent, 0)};`;
    case "typedef":
      return `${indent}typedef ${formatType(btf, type.type, type.name, context, indent, 0)};`;
    default:
      return `${indent}${formatType(btf, id, "", context, indent, 0)};`;
  }
}
