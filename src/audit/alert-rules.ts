/**
 * Alert rules for `netbpf audit`: a YAML or JSON file (JSON is read as YAML,
 * which it is a subset of) listing rules, each a set of conditions on an
 * audit record with a severity and a message template. Validated as a
 * whole when loaded: every problem is reported with the file, the line and
 * what is wrong. Documented in docs/audit-alerts.md.
 *
 *     rules:
 *       - name: ssh-out
 *         severity: high
 *         message: "{process.command} (pid {process.pid}) opened SSH to {flow.remoteAddress}"
 *         filter: tcp dst port 22
 *         direction: outbound
 */
import { readFileSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair } from "yaml";
import { FilterSyntaxError } from "../filter/filter-syntax-error.js";
import { durationMilliseconds, type DurationUnit } from "../sys/duration.js";
import { argumentError, expectArray, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { userIdForName } from "../sys/user-accounts.js";
import { auditRecordKinds, expectAuditRecord, type AuditAlert, type AuditRecord, type AuditRecordKind } from "./audit-record.js";
import { compileFlowFilter, type FlowFilter } from "./flow-filter.js";
import { compileGlob, type GlobPattern } from "./glob-pattern.js";
import { isRecordFieldPath, recordField, recordFieldPaths } from "./record-fields.js";
import type { SeenKind } from "./seen-history.js";

export type AlertSeverity = AuditAlert["severity"];
export const alertSeverities: readonly AlertSeverity[] = ["info", "low", "medium", "high", "critical"];

/** Kinds a rule looks at unless it names its own: every kind but alerts (an alert never triggers another). */
export const defaultRuleKinds: readonly AuditRecordKind[] = auditRecordKinds.filter((kind) => kind !== "alert");

/** "N matching records within a window, per key". */
export interface AlertRate {
  count: number;
  windowMilliseconds: number;
  /** Field paths whose values form the key (empty: one count for the whole rule). */
  per: string[];
}

/** A message template: text with `{field.path}` placeholders (`{{` and `}}` are literal braces). */
export interface MessageTemplate {
  readonly text: string;
  /** Fills the template in; `extra` supplies rule, severity, count and window. */
  render(record: AuditRecord, extra: Readonly<Record<string, string | number>>): string;
}

/** Placeholders besides the record's fields. */
export const templateExtraFields = ["rule", "severity", "count", "window"] as const;

export interface AlertRule {
  name: string;
  severity: AlertSeverity;
  message: MessageTemplate;
  description: string | null;
  kinds: readonly AuditRecordKind[];
  /** tcpdump expression over the record's 5-tuple. */
  filter: FlowFilter | null;
  /** Globs on process.command (any may match). */
  process: GlobPattern[] | null;
  /** Globs on process.executable (any may match). */
  executable: GlobPattern[] | null;
  /** Numeric user ids (names are resolved when the rules are loaded). */
  users: number[] | null;
  direction: "outbound" | "inbound" | null;
  /** Globs on the DNS question name (dns records) or the flow's remote name (any may match). */
  dnsName: GlobPattern[] | null;
  /** "destination": an outbound flow to a protocol/address/port never seen before; "listener": a listening protocol/address/port never seen before. */
  firstSeen: SeenKind | null;
  rate: AlertRate | null;
  /** Where the rule was written. */
  file: string;
  line: number;
}

/** One thing wrong in a rules file. */
export interface AlertRuleProblem {
  file: string;
  line: number;
  column: number;
  message: string;
}

/** A rules file that cannot be used: every problem found, the first one in the message. */
export class AlertRulesError extends UsageError {
  readonly problems: AlertRuleProblem[];
  constructor(problems: AlertRuleProblem[]) {
    const first = problems[0]!;
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? "s" : ""}: see netbpf audit rules check)` : "";
    super("load alert rules", `${formatProblem(first)}${more}`);
    this.problems = problems;
  }
}

/** `file:line: what is wrong`, on one line. */
export function formatProblem(problem: AlertRuleProblem): string {
  expectObject("format alert rule problem", "problem", problem);
  expectString("format alert rule problem", "problem.file", problem.file);
  expectInteger("format alert rule problem", "problem.line", problem.line, 1);
  expectString("format alert rule problem", "problem.message", problem.message);
  return `${problem.file}:${problem.line}: ${problem.message}`;
}

const ruleFields = ["name", "severity", "message", "description", "kinds", "filter", "process", "executable", "user", "direction", "dns", "firstSeen", "rate", "enabled"] as const;
const rateFields = ["count", "window", "per"] as const;
const maximumRateCount = 10_000;

/** A validated set of alert rules. */
export class AlertRules {
  readonly file: string;
  readonly rules: readonly AlertRule[];

  /** Rules already validated (by RulesReader); use load, parse or fromObject. */
  constructor(file: string, rules: AlertRule[]) {
    this.file = expectString("alert rules", "file", file);
    this.rules = expectArray<AlertRule>("alert rules", "rules", rules);
  }

  /** Reads and validates a YAML or JSON rules file. Throws AlertRulesError (a UsageError) naming file and line. */
  static load(file: string): AlertRules {
    expectString("load alert rules", "file", file);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new UsageError("load alert rules", `cannot read ${file}: ${code}`, "give the path of a YAML or JSON rules file");
    }
    return AlertRules.parse(text, file);
  }

  /** Validates rules from YAML or JSON text; `file` names it in errors. */
  static parse(text: string, file = "rules"): AlertRules {
    expectString("load alert rules", "text", text);
    expectString("load alert rules", "file", file);
    return new RulesReader(text, file).read();
  }

  /** Rules from a plain object of the file's shape (`{ rules: [...] }`), as if read from a JSON file. */
  static fromObject(object: unknown, file = "rules"): AlertRules {
    if (typeof object !== "object" || object === null) throw argumentError("load alert rules", "object", "an object of the rules file's shape ({ rules: [...] }) or a list of rules", object);
    return AlertRules.parse(JSON.stringify(object, null, 1), file);
  }

  /** Whether the record satisfies every stateless condition of the rule (not firstSeen, not rate). */
  static matchesConditions(rule: AlertRule, record: AuditRecord): boolean {
    const operation = "match alert rule";
    if (typeof rule !== "object" || rule === null || !Array.isArray(rule.kinds)) throw argumentError(operation, "rule", "a rule of an AlertRules (from AlertRules.load, parse or fromObject)", rule);
    return ruleMatches(rule, expectAuditRecord(operation, "record", record));
  }
}

/** AlertRules.matchesConditions without the argument checks, for the alert engine's per-record loop. */
export function ruleMatches(rule: AlertRule, record: AuditRecord): boolean {
  if (!rule.kinds.includes(record.kind)) return false;
  if (rule.direction !== null && record.flow?.direction !== rule.direction) return false;
  if (rule.users !== null) {
    const uid = record.process?.uid;
    if (uid === null || uid === undefined || !rule.users.includes(uid)) return false;
  }
  if (rule.process !== null && !anyMatches(rule.process, record.process?.command)) return false;
  if (rule.executable !== null && !anyMatches(rule.executable, record.process?.executable)) return false;
  if (rule.dnsName !== null && !anyMatches(rule.dnsName, record.dns?.queryName) && !anyMatches(rule.dnsName, record.flow?.remoteName)) return false;
  if (rule.filter !== null && !rule.filter.matches(record)) return false;
  return true;
}

function anyMatches(patterns: GlobPattern[], text: string | null | undefined): boolean {
  return text !== null && text !== undefined && patterns.some((pattern) => pattern.matches(text));
}

class RulesReader {
  private readonly lines = new LineCounter();
  private readonly problems: AlertRuleProblem[] = [];

  constructor(private readonly text: string, private readonly file: string) {}

  read(): AlertRules {
    const document = parseDocument(this.text, { lineCounter: this.lines, prettyErrors: false, uniqueKeys: true });
    for (const error of document.errors) {
      const position = error.linePos?.[0] ?? this.lines.linePos(error.pos[0]);
      this.problems.push({ file: this.file, line: position.line, column: position.col, message: `not valid YAML or JSON: ${oneLine(error.message)}` });
    }
    if (this.problems.length > 0) throw new AlertRulesError(this.problems);
    const root = document.contents;
    let list: Node | null = null;
    if (root === null || (isScalar(root) && (root.value === null || root.value === ""))) {
      this.problem(undefined, "the file holds no rules (write `rules:` followed by a list of rules)");
    } else if (isSeq(root)) {
      list = root;
    } else if (isMap(root)) {
      for (const pair of root.items) {
        const key = keyText(pair);
        if (key === "rules") list = pair.value as Node | null;
        else this.problem(pair.key as Node, `unknown top-level field ${JSON.stringify(key)} (the file holds \`rules:\`, a list of rules)`);
      }
      if (list === null && this.problems.length === 0) this.problem(root, "no `rules:` list");
    } else {
      this.problem(root, "expected `rules:` followed by a list of rules");
    }
    const rules: AlertRule[] = [];
    if (list !== null) {
      if (!isSeq(list)) {
        this.problem(list, "`rules` must be a list (each item starting with `- name: …`)");
      } else {
        const names = new Map<string, number>();
        for (const item of list.items) {
          const rule = this.readRule(item as Node);
          if (rule === undefined) continue;
          const earlier = names.get(rule.name);
          if (earlier !== undefined) this.problemAt(rule.line, 1, `rule ${JSON.stringify(rule.name)}: the name is already used by the rule on line ${earlier}`);
          else names.set(rule.name, rule.line);
          if (rule.enabled) rules.push(rule.rule);
        }
      }
    }
    if (this.problems.length > 0) throw new AlertRulesError(this.problems);
    return new AlertRules(this.file, rules);
  }

  private readRule(node: Node): { rule: AlertRule; name: string; line: number; enabled: boolean } | undefined {
    const line = this.position(node).line;
    if (!isMap(node)) {
      this.problem(node, "a rule must be a mapping (name:, severity:, message:, conditions)");
      return undefined;
    }
    const fields = new Map<string, Pair>();
    for (const pair of node.items) {
      const key = keyText(pair);
      if (!(ruleFields as readonly string[]).includes(key)) {
        this.problem(pair.key as Node, `${this.ruleLabel(node)}unknown field ${JSON.stringify(key)}${suggestion(key, ruleFields)} (fields: ${ruleFields.join(", ")})`);
        continue;
      }
      fields.set(key, pair);
    }
    const label = this.ruleLabel(node);
    const before = this.problems.length;
    const name = this.requiredString(node, fields, "name", label);
    if (name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/.test(name)) {
      this.problem(fields.get("name")!.value as Node, `${label}name ${JSON.stringify(name)} must be 1-128 letters, digits, "_", ".", ":" or "-"`);
    }
    const severityText = this.requiredString(node, fields, "severity", label);
    let severity: AlertSeverity = "info";
    if (severityText !== undefined) {
      if ((alertSeverities as readonly string[]).includes(severityText)) severity = severityText as AlertSeverity;
      else this.problem(fields.get("severity")!.value as Node, `${label}severity ${JSON.stringify(severityText)} is not one of ${alertSeverities.join(", ")}`);
    }
    const messageText = this.requiredString(node, fields, "message", label);
    const message = messageText === undefined ? undefined : this.template(fields.get("message")!.value as Node, messageText, label);
    const description = this.optionalString(fields, "description", label) ?? null;
    const enabledNode = fields.get("enabled")?.value as Node | undefined;
    let enabled = true;
    if (enabledNode !== undefined) {
      if (isScalar(enabledNode) && typeof enabledNode.value === "boolean") enabled = enabledNode.value;
      else this.problem(enabledNode, `${label}enabled must be true or false`);
    }

    const kinds = this.kinds(fields, label);
    const filter = this.filter(fields, label);
    const process = this.globs(fields, "process", label, false);
    const executable = this.globs(fields, "executable", label, false);
    const dnsName = this.globs(fields, "dns", label, true);
    const users = this.users(fields, label);
    const direction = this.choice(fields, "direction", ["outbound", "inbound"] as const, label);
    const firstSeen = this.choice(fields, "firstSeen", ["destination", "listener"] as const, label);
    const rate = this.rate(fields, label);
    if (firstSeen === "listener" && kinds !== undefined && !kinds.includes("listen")) {
      this.problem(fields.get("firstSeen")!.value as Node, `${label}firstSeen: listener needs kinds to include listen`);
    }
    if (firstSeen === "destination" && direction === "inbound") {
      this.problem(fields.get("firstSeen")!.value as Node, `${label}firstSeen: destination applies to outbound flows, but direction is inbound`);
    }
    if (this.problems.length > before || name === undefined || message === undefined) return undefined;
    const ruleKinds = kinds ?? (firstSeen === "listener" ? ["listen" as const] : firstSeen === "destination" ? ["connection" as const, "udp" as const] : defaultRuleKinds);
    return {
      name,
      line,
      enabled,
      rule: {
        name, severity, message, description, kinds: ruleKinds, filter: filter ?? null, process: process ?? null, executable: executable ?? null,
        users: users ?? null, direction: direction ?? null, dnsName: dnsName ?? null, firstSeen: firstSeen ?? null, rate: rate ?? null, file: this.file, line,
      },
    };
  }

  private ruleLabel(node: Node): string {
    if (!isMap(node)) return "";
    const name = node.items.find((pair) => keyText(pair) === "name")?.value;
    return isScalar(name) && typeof name.value === "string" ? `rule ${JSON.stringify(name.value)}: ` : "";
  }

  private requiredString(node: Node, fields: Map<string, Pair>, field: string, label: string): string | undefined {
    if (!fields.has(field)) {
      this.problem(node, `${label}missing field ${field}`);
      return undefined;
    }
    return this.optionalString(fields, field, label);
  }

  private optionalString(fields: Map<string, Pair>, field: string, label: string): string | undefined {
    const pair = fields.get(field);
    if (pair === undefined) return undefined;
    const value = pair.value as Node | null;
    if (isScalar(value) && (typeof value.value === "string" || typeof value.value === "number") && String(value.value) !== "") return String(value.value);
    this.problem(value ?? (pair.key as Node), `${label}${field} must be a non-empty text`);
    return undefined;
  }

  /** A text or a list of texts. */
  private texts(fields: Map<string, Pair>, field: string, label: string): { node: Node; text: string }[] | undefined {
    const pair = fields.get(field);
    if (pair === undefined) return undefined;
    const value = pair.value as Node | null;
    const items = isSeq(value) ? (value.items as Node[]) : [value];
    const out: { node: Node; text: string }[] = [];
    for (const item of items) {
      if (isScalar(item) && (typeof item.value === "string" || typeof item.value === "number") && String(item.value) !== "") out.push({ node: item, text: String(item.value) });
      else this.problem(item ?? (pair.key as Node), `${label}${field} must be a text or a list of texts`);
    }
    if (out.length === 0 && items.length === 0) this.problem(value ?? (pair.key as Node), `${label}${field} is an empty list`);
    return out;
  }

  private kinds(fields: Map<string, Pair>, label: string): AuditRecordKind[] | undefined {
    const texts = this.texts(fields, "kinds", label);
    if (texts === undefined) return undefined;
    const kinds: AuditRecordKind[] = [];
    for (const { node, text } of texts) {
      if (text === "alert") this.problem(node, `${label}kinds: a rule cannot look at alert records (an alert never triggers another)`);
      else if ((defaultRuleKinds as readonly string[]).includes(text)) kinds.push(text as AuditRecordKind);
      else this.problem(node, `${label}kinds: unknown record kind ${JSON.stringify(text)}${suggestion(text, defaultRuleKinds)} (kinds: ${defaultRuleKinds.join(", ")})`);
    }
    return kinds;
  }

  private filter(fields: Map<string, Pair>, label: string): FlowFilter | undefined {
    const expression = this.optionalString(fields, "filter", label);
    if (expression === undefined) return undefined;
    try {
      return compileFlowFilter(expression);
    } catch (error) {
      if (error instanceof FilterSyntaxError) {
        this.problem(fields.get("filter")!.value as Node, `${label}filter: ${error.detail}${error.expected ? `; expected ${error.expected}` : ""}: ${markSpan(error.expression, error.position, error.end)}`);
        return undefined;
      }
      if (error instanceof NetbpfError) {
        this.problem(fields.get("filter")!.value as Node, `${label}filter: ${oneLine(error.message)}`);
        return undefined;
      }
      throw error;
    }
  }

  private globs(fields: Map<string, Pair>, field: string, label: string, ignoreCase: boolean): GlobPattern[] | undefined {
    const texts = this.texts(fields, field, label);
    if (texts === undefined) return undefined;
    const globs: GlobPattern[] = [];
    for (const { node, text } of texts) {
      try {
        globs.push(compileGlob(ignoreCase ? text.replace(/\.$/, "") : text, { ignoreCase }));
      } catch (error) {
        this.problem(node, `${label}${field}: ${(error as Error).message}`);
      }
    }
    return globs;
  }

  private users(fields: Map<string, Pair>, label: string): number[] | undefined {
    const texts = this.texts(fields, "user", label);
    if (texts === undefined) return undefined;
    const users: number[] = [];
    for (const { node, text } of texts) {
      if (/^\d+$/.test(text) && Number(text) <= 0xffffffff) {
        users.push(Number(text));
        continue;
      }
      const id = userIdForName(text);
      if (id === undefined) this.problem(node, `${label}user: no account named ${JSON.stringify(text)} on this machine (write a numeric uid for accounts that exist elsewhere)`);
      else users.push(id);
    }
    return users;
  }

  private choice<T extends string>(fields: Map<string, Pair>, field: string, choices: readonly T[], label: string): T | undefined {
    const text = this.optionalString(fields, field, label);
    if (text === undefined) return undefined;
    if ((choices as readonly string[]).includes(text)) return text as T;
    this.problem(fields.get(field)!.value as Node, `${label}${field} ${JSON.stringify(text)} is not one of ${choices.join(", ")}`);
    return undefined;
  }

  private rate(fields: Map<string, Pair>, label: string): AlertRate | undefined {
    const pair = fields.get("rate");
    if (pair === undefined) return undefined;
    const node = pair.value as Node | null;
    if (!isMap(node)) {
      this.problem(node ?? (pair.key as Node), `${label}rate must be a mapping: { count: N, window: 1m, per: [field, …] }`);
      return undefined;
    }
    const rateFieldsSeen = new Map<string, Pair>();
    for (const item of node.items) {
      const key = keyText(item);
      if ((rateFields as readonly string[]).includes(key)) rateFieldsSeen.set(key, item);
      else this.problem(item.key as Node, `${label}rate: unknown field ${JSON.stringify(key)}${suggestion(key, rateFields)} (fields: ${rateFields.join(", ")})`);
    }
    const countNode = rateFieldsSeen.get("count")?.value as Node | undefined;
    let count: number | undefined;
    if (countNode === undefined) this.problem(node, `${label}rate: missing field count`);
    else if (isScalar(countNode) && typeof countNode.value === "number" && Number.isInteger(countNode.value) && countNode.value >= 1 && countNode.value <= maximumRateCount) count = countNode.value;
    else this.problem(countNode, `${label}rate: count must be a whole number from 1 to ${maximumRateCount}`);
    const windowNode = rateFieldsSeen.get("window")?.value as Node | undefined;
    let windowMilliseconds: number | undefined;
    if (windowNode === undefined) {
      this.problem(node, `${label}rate: missing field window`);
    } else if (isScalar(windowNode) && (typeof windowNode.value === "string" || typeof windowNode.value === "number")) {
      const result = durationMilliseconds(String(windowNode.value), "s" satisfies DurationUnit);
      if (typeof result === "string") this.problem(windowNode, `${label}rate: window ${result} (write e.g. 30s, 5m, 1h or 1d)`);
      else windowMilliseconds = result;
    } else {
      this.problem(windowNode, `${label}rate: window must be a duration such as 30s, 5m, 1h or 1d`);
    }
    const per: string[] = [];
    const perTexts = this.texts(rateFieldsSeen, "per", `${label}rate: `);
    for (const { node: item, text } of perTexts ?? []) {
      if (isRecordFieldPath(text)) per.push(text);
      else this.problem(item, `${label}rate: per: unknown field ${JSON.stringify(text)}${suggestion(text, recordFieldPaths)}`);
    }
    if (count === undefined || windowMilliseconds === undefined) return undefined;
    return { count, windowMilliseconds, per };
  }

  private template(node: Node, text: string, label: string): MessageTemplate | undefined {
    const parts: ({ literal: string } | { field: string })[] = [];
    let literal = "";
    let ok = true;
    for (let i = 0; i < text.length; i++) {
      const character = text[i]!;
      if ((character === "{" || character === "}") && text[i + 1] === character) {
        literal += character;
        i++;
        continue;
      }
      if (character === "}") {
        this.problem(node, `${label}message: a lone } at character ${i + 1} (write }} for a brace)`);
        ok = false;
        break;
      }
      if (character !== "{") {
        literal += character;
        continue;
      }
      const close = text.indexOf("}", i);
      if (close < 0) {
        this.problem(node, `${label}message: a { at character ${i + 1} is not closed (write {{ for a brace)`);
        ok = false;
        break;
      }
      const field = text.slice(i + 1, close).trim();
      if (!isRecordFieldPath(field) && !(templateExtraFields as readonly string[]).includes(field)) {
        this.problem(node, `${label}message: unknown field {${field}}${suggestion(field, [...recordFieldPaths, ...templateExtraFields])}`);
        ok = false;
      }
      if (literal !== "") parts.push({ literal });
      literal = "";
      parts.push({ field });
      i = close;
    }
    if (literal !== "") parts.push({ literal });
    if (!ok) return undefined;
    return {
      text,
      render(record, extra) {
        let out = "";
        for (const part of parts) {
          if ("literal" in part) {
            out += part.literal;
            continue;
          }
          const value = part.field in extra ? extra[part.field] : recordField(record, part.field);
          out += value === null || value === undefined ? "-" : String(value);
        }
        return out;
      },
    };
  }

  private position(node: Node | undefined | null): { line: number; col: number } {
    const offset = node?.range?.[0];
    return offset === undefined ? { line: 1, col: 1 } : this.lines.linePos(offset);
  }

  private problem(node: Node | undefined | null, message: string): void {
    const position = this.position(node);
    this.problemAt(position.line, position.col, message);
  }

  private problemAt(line: number, column: number, message: string): void {
    this.problems.push({ file: this.file, line, column, message });
  }
}

function keyText(pair: Pair): string {
  const key = pair.key as Node | null;
  return isScalar(key) ? String(key.value) : String(key);
}

function oneLine(text: string): string {
  return text.split("\n").map((line) => line.trim()).filter(Boolean).join(" ");
}

/** The expression on one line with the offending part between » and «. */
function markSpan(expression: string, start: number, end: number): string {
  const line = expression.replace(/[\t\n\r]+/g, " ");
  if (start >= line.length) return `${line} »«`;
  return `${line.slice(0, start)}»${line.slice(start, end)}«${line.slice(end)}`;
}

/** ` (did you mean "x"?)` for a close known name. */
function suggestion(text: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(text.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      bestDistance = distance;
      best = candidate;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(text.length / 4)) ? ` (did you mean ${JSON.stringify(best)}?)` : "";
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
