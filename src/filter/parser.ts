import type {
  ArithmeticNode, ArithmeticOperator, DirectionQualifier, EncapsulationKind, FilterNode, IdValue, Qualifiers,
  RelationOperator, TypeQualifier,
} from "./ast.js";
import { FilterSyntaxError, type SourceSpan } from "./filter-syntax-error.js";
import { keywords, tokenize, type Token } from "./lexer.js";
import { expectString } from "../sys/argument-checks.js";

/** Protocol names that may qualify a primitive or stand alone (libpcap's `pname`). */
const protocolNames = new Set([
  "link", "ip", "arp", "rarp", "sctp", "tcp", "udp", "icmp", "igmp", "igrp", "pim", "vrrp", "carp", "atalk",
  "aarp", "decnet", "lat", "sca", "moprc", "mopdl", "ip6", "icmp6", "ah", "esp", "iso", "esis", "isis",
  "l1", "l2", "iih", "lsp", "snp", "psnp", "csnp", "clnp", "stp", "ipx", "netbeui", "radio",
]);
const typeQualifiers = new Set(["host", "net", "port", "portrange", "gateway"]);
const directionKeywords = new Set(["src", "dst", "addr1", "addr2", "addr3", "addr4", "ra", "ta"]);
const relationOperators = new Set([">", ">=", "=", "<=", "<", "!="]);
const arithmeticOperators = new Set(["+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>"]);
const precedence: Record<string, number> = { "|": 1, "&": 2, "<<": 3, ">>": 3, "+": 4, "-": 4, "*": 5, "/": 5 };
/** Operators libpcap's grammar (1.10) gives no precedence: yacc then shifts, so the right operand extends over the rest of the expression. */
const unranked = new Set(["%", "^"]);
/** Keywords of link types netbpf does not compile for (ATM, MTP, pf, 802.11 ...). */
const unsupportedKeywords = new Set([
  "lane", "metac", "bcc", "oam", "oamf4", "oamf4ec", "oamf4sc", "sc", "ilmic", "vpi", "vci", "connectmsg",
  "metaconnect", "ifname", "rnr", "reason", "rset", "srnr", "action", "fisu", "lssu", "lsu", "msu", "hfisu",
  "hlssu", "hmsu", "sio", "opc", "dpc", "sls", "hsio", "hopc", "hdpc", "hsls", "type", "subtype", "dir",
]);
const encapsulations = new Set(["vlan", "mpls", "pppoes", "geneve", "vxlan"]);

/** Parses a pcap-filter(7) expression into an AST; an empty expression gives undefined (match all). */
export function parseFilter(expression: string): FilterNode | undefined {
  expectString("parse filter", "expression", expression);
  return new Parser(expression).parseProgram();
}

const undefinedQualifiers: Qualifiers = { undefined: true };
/** What a failed attempt throws (see Parser.error). */
const attemptFailed = new FilterSyntaxError("", { start: 0, end: 0 }, "alternative does not parse");
/** Deepest parenthesis nesting accepted (keeps recursion far from the stack limit). */
export const maximumNesting = 200;

class Parser {
  private readonly tokens: Token[];
  private index = 0;
  /** How many attempts (alternatives tried) are running: their errors are never shown. */
  private speculating = 0;

  constructor(private readonly expression: string) {
    this.tokens = tokenize(expression);
    let depth = 0;
    for (const token of this.tokens) {
      if (token.kind !== "operator") continue;
      if (token.text === "(" || token.text === "[") depth++;
      else if (token.text === ")" || token.text === "]") depth--;
      if (depth > maximumNesting) throw this.error(token, `parentheses nested deeper than ${maximumNesting}`, "a flatter expression");
    }
  }

  parseProgram(): FilterNode | undefined {
    if (this.peek().kind === "end") return undefined;
    const { node } = this.parseExpression(undefinedQualifiers);
    const next = this.peek();
    if (next.kind !== "end") {
      // "tcp and prt 80": the name before the unexpected token is the likely mistake; point there.
      const previous = this.tokens[this.index - 1];
      const suggestion = previous?.kind === "name" && next.text !== ")" ? nearestKeyword(previous.text) : undefined;
      if (previous && suggestion) throw this.error(previous, `unknown keyword ${describe(previous).replace(/^name /, "")}`, suggestion);
      throw this.error(next, next.text === ")" ? "unbalanced ')'" : `unexpected ${describe(next)}`, "'and', 'or' or the end of the expression");
    }
    return node;
  }

  // ---- token helpers -------------------------------------------------------

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.index + offset, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== "end") this.index++;
    return token;
  }

  private is(token: Token, kind: Token["kind"], text?: string): boolean {
    return token.kind === kind && (text === undefined || token.text === text);
  }

  private isKeyword(token: Token, ...words: string[]): boolean {
    return token.kind === "keyword" && words.includes(token.text);
  }

  private isOperator(token: Token, ...operators: string[]): boolean {
    return token.kind === "operator" && operators.includes(token.text);
  }

  private expectOperator(text: string, expected: string): Token {
    const token = this.peek();
    if (!this.isOperator(token, text)) throw this.error(token, `unexpected ${describe(token)}`, expected);
    return this.next();
  }

  private error(token: Token | SourceSpan, detail: string, expected?: string): FilterSyntaxError {
    // An attempt's error is discarded: skip rendering the whole expression (one per parenthesis
    // would make long expressions quadratic).
    if (this.speculating > 0) return attemptFailed;
    return new FilterSyntaxError(this.expression, { start: token.start, end: token.end }, detail, expected);
  }

  private unexpected(expected: string): FilterSyntaxError {
    const token = this.peek();
    return this.error(token, token.kind === "end" ? "unexpected end of expression" : `unexpected ${describe(token)}`, expected);
  }

  /** Tries `parse`; on a syntax error restores the position and returns undefined. */
  private attempt<T>(parse: () => T): T | undefined {
    const saved = this.index;
    this.speculating++;
    try {
      return parse();
    } catch (error) {
      if (!(error instanceof FilterSyntaxError)) throw error;
      this.index = saved;
      return undefined;
    } finally {
      this.speculating--;
    }
  }

  private span(start: number): SourceSpan {
    const previous = this.tokens[Math.max(0, this.index - 1)]!;
    return { start, end: Math.max(previous.end, start) };
  }

  // ---- expressions -------------------------------------------------------------

  /** expr: term | expr and term | expr and id | expr or term | expr or id */
  private parseExpression(inherited: Qualifiers): { node: FilterNode; qualifiers: Qualifiers } {
    let { node, qualifiers } = this.parseTerm(inherited);
    while (this.isKeyword(this.peek(), "and", "or")) {
      const operator = this.next().text as "and" | "or";
      let right: FilterNode;
      if (this.startsId()) {
        right = this.parseId(qualifiers);
      } else {
        const term = this.parseTerm(qualifiers);
        right = term.node;
        qualifiers = term.qualifiers;
      }
      node = { kind: operator, left: node, right, span: { start: node.span.start, end: right.span.end } };
    }
    return { node, qualifiers };
  }

  /** True when the next tokens form an `id` rather than a `term` (after and/or). */
  private startsId(): boolean {
    let offset = 0;
    while (this.isKeyword(this.peek(offset), "not")) offset++;
    const token = this.peek(offset);
    switch (token.kind) {
      case "name":
      case "ipv4":
      case "ipv6":
      case "mac":
        return true;
      case "number": {
        const after = this.peek(offset + 1);
        return !(after.kind === "operator" && (relationOperators.has(after.text) || arithmeticOperators.has(after.text)));
      }
      case "operator":
        if (token.text !== "(") return false;
        return this.parenthesisHoldsIds(this.index + offset);
      default:
        return false;
    }
  }

  /** Whether the parenthesis at `position` parses as a list of ids (`host a and (b or c)`). */
  private parenthesisHoldsIds(position: number): boolean {
    const saved = this.index;
    this.index = position;
    const result = this.attempt(() => {
      this.parseId(undefinedQualifiers, true);
      return true;
    });
    this.index = saved;
    return result === true;
  }

  /** term: rterm | not term */
  private parseTerm(inherited: Qualifiers): { node: FilterNode; qualifiers: Qualifiers } {
    const token = this.peek();
    if (this.isKeyword(token, "not")) {
      this.next();
      const inner = this.parseTerm(inherited);
      return { node: { kind: "not", operand: inner.node, span: { start: token.start, end: inner.node.span.end } }, qualifiers: inner.qualifiers };
    }
    return this.parseRterm(inherited);
  }

  private parseRterm(inherited: Qualifiers): { node: FilterNode; qualifiers: Qualifiers } {
    const token = this.peek();
    const start = token.start;
    const noQualifiers = undefinedQualifiers;

    if (this.isOperator(token, "(")) {
      const relation = this.attempt(() => this.parseRelation());
      if (relation) return { node: relation, qualifiers: noQualifiers };
      this.next();
      const inner = this.parseExpression(inherited);
      if (!this.isOperator(this.peek(), ")")) throw this.unexpected("')' or 'and'/'or'");
      this.next();
      const node = { ...inner.node, span: this.span(start) } as FilterNode;
      return { node, qualifiers: inherited };
    }
    if (token.kind === "number" || this.isKeyword(token, "len") || this.isOperator(token, "-")) {
      return { node: this.parseRelation(), qualifiers: noQualifiers };
    }
    if (token.kind === "keyword") {
      const word = token.text;
      if (protocolNames.has(word) && this.isOperator(this.peek(1), "[")) {
        return { node: this.parseRelation(), qualifiers: noQualifiers };
      }
      if (protocolNames.has(word) || directionKeywords.has(word) || typeQualifiers.has(word) || word === "proto" || word === "protochain") {
        return this.parseQualified();
      }
      if (word === "broadcast" || word === "multicast") {
        this.next();
        return { node: { kind: word, span: this.span(start) }, qualifiers: noQualifiers };
      }
      if (word === "less" || word === "greater") {
        this.next();
        const value = this.expectNumber(`a packet length after '${word}'`);
        return { node: { kind: "length", operator: word, value, span: this.span(start) }, qualifiers: noQualifiers };
      }
      if (word === "inbound" || word === "outbound") {
        this.next();
        return { node: { kind: "direction", direction: word, span: this.span(start) }, qualifiers: noQualifiers };
      }
      if (word === "ifindex") {
        this.next();
        const value = this.expectNumber("an interface index");
        return { node: { kind: "ifindex", value, span: this.span(start) }, qualifiers: noQualifiers };
      }
      if (word === "byte") {
        this.next();
        const offset = this.expectNumber("a byte offset after 'byte'");
        const operatorToken = this.peek();
        if (!(this.isOperator(operatorToken, "&", "|", "<", ">", "="))) throw this.unexpected("one of & | < > =");
        this.next();
        const value = this.expectNumber("a number");
        const operator = operatorToken.text as "&" | "|" | "<" | ">" | "=";
        return { node: { kind: "byte", offset, operator, value, span: this.span(start) }, qualifiers: noQualifiers };
      }
      if (encapsulations.has(word)) {
        this.next();
        const valueStart = this.peek().start;
        const value = this.optionalPnum();
        const node: FilterNode = value === undefined
          ? { kind: "encapsulation", encapsulation: word as EncapsulationKind, span: this.span(start) }
          : { kind: "encapsulation", encapsulation: word as EncapsulationKind, value, valueSpan: this.span(valueStart), span: this.span(start) };
        return { node, qualifiers: noQualifiers };
      }
      if (word === "pppoed") {
        this.next();
        return { node: { kind: "pppoed", span: this.span(start) }, qualifiers: noQualifiers };
      }
      if (word === "llc") {
        this.next();
        let subtype: string | undefined;
        // `rnr` is also a pflog keyword.
        if (this.peek().kind === "name" || this.isKeyword(this.peek(), "rnr")) subtype = this.next().text;
        return { node: subtype ? { kind: "llc", subtype, span: this.span(start) } : { kind: "llc", span: this.span(start) }, qualifiers: noQualifiers };
      }
      if (unsupportedKeywords.has(word)) {
        throw this.error(token, `'${token.source}' is not supported (it applies only to ATM, SS7, pf or 802.11 link types)`);
      }
    }
    if (token.kind === "end") throw this.unexpected("a primitive such as 'host', 'port', 'tcp' or a relation");
    if (token.kind === "name" || token.kind === "ipv4" || token.kind === "ipv6" || token.kind === "mac") {
      throw this.error(token, `${describe(token)} needs a qualifier`, "a qualifier before it, such as 'host', 'net', 'port' or 'ether host'");
    }
    throw this.unexpected("a primitive such as 'host', 'port', 'tcp' or a relation");
  }

  private expectNumber(expected: string): number {
    const token = this.peek();
    if (token.kind !== "number") throw this.unexpected(expected);
    this.next();
    return token.value!;
  }

  /** pnum: NUM | '(' pnum ')', optional. */
  private optionalPnum(): number | undefined {
    let depth = 0;
    while (this.isOperator(this.peek(depth), "(")) depth++;
    if (this.peek(depth).kind !== "number") return undefined;
    for (let i = 1; i <= depth; i++) if (!this.isOperator(this.peek(depth + i), ")")) return undefined;
    for (let i = 0; i < depth; i++) this.next();
    const value = this.next().value!;
    for (let i = 0; i < depth; i++) this.next();
    return value;
  }

  /** head id | pname | pqual broadcast/multicast */
  private parseQualified(): { node: FilterNode; qualifiers: Qualifiers } {
    const start = this.peek().start;
    const qualifiers: Qualifiers = {};
    if (protocolNames.has(this.peek().text) && this.peek().kind === "keyword") qualifiers.protocol = this.next().text;
    const token = this.peek();
    if (token.kind === "keyword" && directionKeywords.has(token.text)) {
      this.next();
      let direction = token.text as DirectionQualifier;
      const joiner = this.peek();
      const other = this.peek(1);
      if ((token.text === "src" || token.text === "dst") && this.isKeyword(joiner, "and", "or") && this.isKeyword(other, "src", "dst") && other.text !== token.text) {
        this.next();
        this.next();
        direction = joiner.text === "and" ? "src and dst" : "src or dst";
      }
      qualifiers.direction = direction;
      const typeToken = this.peek();
      if (typeToken.kind === "keyword" && typeQualifiers.has(typeToken.text) && typeToken.text !== "gateway") {
        qualifiers.type = this.next().text as TypeQualifier;
      }
    } else if (token.kind === "keyword" && (typeQualifiers.has(token.text) || token.text === "proto" || token.text === "protochain")) {
      qualifiers.type = this.next().text as TypeQualifier;
    } else if (this.isKeyword(token, "broadcast", "multicast")) {
      this.next();
      const node: FilterNode = { kind: token.text as "broadcast" | "multicast", protocol: qualifiers.protocol!, span: this.span(start) };
      return { node, qualifiers: undefinedQualifiers };
    } else if (qualifiers.protocol !== undefined) {
      return { node: { kind: "protocol", protocol: qualifiers.protocol, span: this.span(start) }, qualifiers: undefinedQualifiers };
    }
    const node = this.parseId(qualifiers);
    return { node: { ...node, span: { start, end: node.span.end } } as FilterNode, qualifiers };
  }

  /**
   * id: nid | pnum | '(' pid ')'; nid: name | address[/len | mask address] | not id.
   * Every id gets the qualifiers in force (libpcap's qualifier inheritance).
   */
  private parseId(qualifiers: Qualifiers, onlyParenthesis = false): FilterNode {
    const token = this.peek();
    const start = token.start;
    if (this.isKeyword(token, "not") && !onlyParenthesis) {
      this.next();
      const operand = this.parseId(qualifiers);
      return { kind: "not", operand, span: this.span(start) };
    }
    if (this.isOperator(token, "(")) {
      this.next();
      let node = this.parseId(qualifiers);
      while (this.isKeyword(this.peek(), "and", "or")) {
        const operator = this.next().text as "and" | "or";
        const right = this.parseId(qualifiers);
        node = { kind: operator, left: node, right, span: { start: node.span.start, end: right.span.end } };
      }
      if (!this.isOperator(this.peek(), ")")) throw this.unexpected("')' or 'and'/'or' followed by another address, port or name");
      this.next();
      return { ...node, span: this.span(start) } as FilterNode;
    }
    if (onlyParenthesis) throw this.unexpected("'('");
    let id: IdValue;
    switch (token.kind) {
      case "number":
        this.next();
        id = { kind: "number", value: token.value!, text: token.source };
        break;
      case "name":
        this.next();
        id = { kind: "name", text: token.text };
        break;
      case "mac":
        this.next();
        id = { kind: "mac", bytes: token.bytes!, text: token.text };
        break;
      case "ipv4": {
        this.next();
        if (this.isOperator(this.peek(), "/")) {
          this.next();
          const prefixLength = this.expectNumber("a prefix length after '/'");
          id = { kind: "ipv4", text: token.text, prefixLength };
        } else if (this.isKeyword(this.peek(), "mask")) {
          this.next();
          const maskToken = this.peek();
          if (maskToken.kind !== "ipv4") throw this.unexpected("a dotted netmask such as 255.255.0.0 after 'mask'");
          this.next();
          id = { kind: "ipv4", text: token.text, mask: maskToken.text, maskSpan: { start: maskToken.start, end: maskToken.end } };
        } else {
          id = { kind: "ipv4", text: token.text };
        }
        break;
      }
      case "ipv6": {
        this.next();
        if (this.isOperator(this.peek(), "/")) {
          this.next();
          const prefixLength = this.expectNumber("a prefix length after '/'");
          id = { kind: "ipv6", bytes: token.bytes!, text: token.text, prefixLength };
        } else {
          id = { kind: "ipv6", bytes: token.bytes!, text: token.text };
        }
        break;
      }
      default:
        throw this.unexpected("a host, network, port or protocol (name or number)");
    }
    return { kind: "primitive", qualifiers, id, idSpan: { start, end: token.end }, span: this.span(start) };
  }

  // ---- arithmetic ------------------------------------------------------------

  /** arth relop arth */
  private parseRelation(): FilterNode {
    const start = this.peek().start;
    const left = this.parseArithmetic(0);
    const operatorToken = this.peek();
    if (!(operatorToken.kind === "operator" && relationOperators.has(operatorToken.text))) {
      throw this.unexpected("a comparison (=, !=, <, <=, >, >=) or an arithmetic operator");
    }
    this.next();
    const right = this.parseArithmetic(0);
    return { kind: "relation", operator: operatorToken.text as RelationOperator, left, right, span: this.span(start) };
  }

  /**
   * Binary arithmetic with libpcap's precedences: | < & < shifts < + - < * /.
   * '%' and '^' have no precedence in libpcap's grammar, so the right operand
   * of either extends over the rest of the arithmetic expression (`len % 3 + 1`
   * is `len % (3 + 1)`, `-len % 3` is `-(len % 3)`), as tcpdump compiles them.
   */
  private parseArithmetic(minimum: number): ArithmeticNode {
    let left = this.parseUnary();
    for (;;) {
      const token = this.peek();
      if (token.kind !== "operator" || !arithmeticOperators.has(token.text)) return left;
      if (unranked.has(token.text)) {
        this.next();
        const right = this.parseArithmetic(0);
        left = { kind: "binary", operator: token.text as ArithmeticOperator, left, right, span: { start: left.span.start, end: right.span.end } };
        continue;
      }
      const level = precedence[token.text]!;
      if (level < minimum) return left;
      this.next();
      const right = this.parseArithmetic(level + 1);
      left = { kind: "binary", operator: token.text as ArithmeticOperator, left, right, span: { start: left.span.start, end: right.span.end } };
    }
  }

  private parseUnary(): ArithmeticNode {
    const token = this.peek();
    if (this.isOperator(token, "-")) {
      this.next();
      let operand = this.parseUnary();
      const next = this.peek();
      if (next.kind === "operator" && unranked.has(next.text)) {
        this.next();
        const right = this.parseArithmetic(0);
        operand = { kind: "binary", operator: next.text as ArithmeticOperator, left: operand, right, span: { start: operand.span.start, end: right.span.end } };
      }
      return { kind: "negate", operand, span: { start: token.start, end: operand.span.end } };
    }
    return this.parsePrimary();
  }

  private parsePrimary(): ArithmeticNode {
    const token = this.peek();
    const start = token.start;
    if (token.kind === "number") {
      this.next();
      return { kind: "number", value: token.value!, span: this.span(start) };
    }
    if (this.isKeyword(token, "len")) {
      this.next();
      return { kind: "length", span: this.span(start) };
    }
    if (this.isOperator(token, "(")) {
      this.next();
      const inner = this.parseArithmetic(0);
      this.expectOperator(")", "')' to close the arithmetic expression");
      return { ...inner, span: this.span(start) };
    }
    if (token.kind === "keyword" && protocolNames.has(token.text)) {
      this.next();
      this.expectOperator("[", `'[' after '${token.source}' to index into the packet`);
      const index = this.parseArithmetic(0);
      let size: 1 | 2 | 4 = 1;
      if (this.isOperator(this.peek(), ":")) {
        this.next();
        const sizeToken = this.peek();
        const value = this.expectNumber("a field size of 1, 2 or 4");
        if (value !== 1 && value !== 2 && value !== 4) throw this.error(sizeToken, `data size must be 1, 2, or 4, not ${value}`, "1, 2 or 4");
        size = value;
      }
      this.expectOperator("]", "']' (or ':size]') to close the packet index");
      return { kind: "load", protocol: token.text, index, size, span: this.span(start) };
    }
    throw this.unexpected("a number, 'len', a packet access such as ip[0] or '('");
  }
}

/** The keywords closest to a misspelt `word` within two edits ("prt" → 'port'; "hst" → 'host' or 'dst'), quoted, or undefined. */
function nearestKeyword(word: string): string | undefined {
  if (word.length < 2 || word.length > 12) return undefined;
  const allowed = Math.min(2, word.length - 1);
  let best: string[] = [];
  let bestDistance = allowed + 1;
  for (const keyword of keywords) {
    const distance = editDistance(word, keyword, allowed + 1);
    if (distance < bestDistance) [best, bestDistance] = [[keyword], distance];
    else if (distance === bestDistance) best.push(keyword);
  }
  return best.length > 0 && best.length <= 3 ? best.map((k) => `'${k}'`).join(" or ") : undefined;
}

/** Levenshtein distance, giving up (returning `limit`) once it reaches `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    if (Math.min(...current) >= limit) return limit;
    previous = current;
  }
  return Math.min(previous[b.length]!, limit);
}

function describe(token: Token): string {
  switch (token.kind) {
    case "end":
      return "end of expression";
    case "keyword":
      return `keyword '${token.source}'`;
    case "operator":
      return `'${token.source}'`;
    case "number":
      return `number ${token.source}`;
    case "name":
      return `name '${token.source}'`;
    default:
      return `address ${token.source}`;
  }
}
