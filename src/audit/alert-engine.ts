/**
 * Runs alert rules over audit records. Each record that satisfies a rule's
 * conditions — and, for a first-seen rule, carries a destination or
 * listener never seen before, and for a rate rule, completes N matching
 * records within the window for its key — becomes an alert: an AuditRecord
 * of kind "alert" naming the rule, its severity and the filled-in message,
 * with the trigger's process, flow and DNS parts.
 *
 * As an AuditSink (plugged into an AuditRecorder), the engine hands its
 * alerts to the audit log through the sink context (so they are stored and
 * reach the other sinks) and sends them at once to its own outputs (stdout,
 * syslog, webhook). Used alone, `evaluate` returns the alerts of one record.
 */
import { expectArray, expectDate, expectFunction, expectInstance, expectInteger, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";
import { expectAuditRecord, type AuditRecord } from "./audit-record.js";
import { expectAuditSink, type AuditSink, type AuditSinkContext } from "./audit-sink.js";
import { AlertRules, alertSeverities, ruleMatches, type AlertRule } from "./alert-rules.js";
import { recordField } from "./record-fields.js";
import { MemorySeenHistory, recordSeenKeys, type SeenHistory, type SeenKind } from "./seen-history.js";

/** Record times a rate rule keeps at most, over all its keys. */
const maximumRateTimes = 1_000_000;

export interface AlertEngineOptions {
  rules: AlertRules;
  /** Where alerts are sent as they happen (closed with the engine). */
  outputs?: AuditSink[];
  /** What was seen before this run, for first-seen rules (the audit log, or a FileSeenHistory). */
  history?: SeenHistory;
  /** Keys remembered in memory during the run (default 1,000,000; the oldest are forgotten first). */
  memoryLimit?: number;
  /** Keys per rate rule counted at once (default 100,000; the least recently matched key is forgotten first). */
  rateKeyLimit?: number;
  /** Told about every alert. */
  onAlert?: (alert: AuditRecord) => void;
  /** Told when an output's write throws (the engine goes on). */
  onOutputError?: (error: unknown, output: AuditSink) => void;
}

export interface AlertEngineStatistics {
  /** Records evaluated. */
  records: number;
  /** Alerts raised. */
  alerts: number;
  /** Alerts raised per rule name. */
  alertsByRule: Record<string, number>;
  /** Output writes that threw. */
  outputErrors: number;
}

export class AlertEngine implements AuditSink {
  readonly rules: AlertRules;
  readonly outputs: readonly AuditSink[];
  readonly #history: SeenHistory | undefined;
  readonly #memory: MemorySeenHistory;
  readonly #rateKeyLimit: number;
  readonly #rates = new Map<AlertRule, Map<string, number[]>>();
  readonly #rateTotals = new Map<AlertRule, number>();
  readonly #usesFirstSeen: boolean;
  readonly #onAlert: AlertEngineOptions["onAlert"];
  readonly #onOutputError: AlertEngineOptions["onOutputError"];
  readonly #statistics: AlertEngineStatistics = { records: 0, alerts: 0, alertsByRule: {}, outputErrors: 0 };
  #context: AuditSinkContext | undefined;

  constructor(options: AlertEngineOptions) {
    const operation = "alert engine";
    expectObject(operation, "options", options);
    this.rules = expectInstance(operation, "options.rules", options.rules, AlertRules, "AlertRules (from AlertRules.load, parse or fromObject)");
    this.outputs = expectArray<AuditSink>(operation, "options.outputs", options.outputs, true);
    this.outputs.forEach((output, index) => expectAuditSink(operation, `options.outputs[${index}]`, output));
    if (options.history !== undefined) {
      expectObject(operation, "options.history", options.history);
      expectFunction(operation, "options.history.seenBefore", options.history.seenBefore);
    }
    for (const name of ["memoryLimit", "rateKeyLimit"] as const) if (options[name] !== undefined) expectInteger(operation, `options.${name}`, options[name], 1);
    for (const name of ["onAlert", "onOutputError"] as const) if (options[name] !== undefined) expectFunction(operation, `options.${name}`, options[name]);
    this.#history = options.history;
    this.#memory = new MemorySeenHistory(options.memoryLimit);
    this.#rateKeyLimit = options.rateKeyLimit ?? 100_000;
    this.#usesFirstSeen = this.rules.rules.some((rule) => rule.firstSeen !== null);
    this.#onAlert = options.onAlert;
    this.#onOutputError = options.onOutputError;
    for (const rule of this.rules.rules) if (rule.rate !== null) this.#rates.set(rule, new Map());
  }

  /** AuditSink: keeps the function that stores alerts in the audit log. */
  start(context: AuditSinkContext): void {
    expectObject("start alert engine", "context", context);
    expectFunction("start alert engine", "context.store", context.store);
    this.#context = context;
  }

  /**
   * The alerts one record raises, in rule order. Alert records are never
   * evaluated (an alert does not trigger another). Updates first-seen memory
   * and rate counts.
   */
  async evaluate(record: AuditRecord): Promise<AuditRecord[]> {
    expectAuditRecord("evaluate alert rules", "record", record);
    if (record.kind === "alert") return [];
    this.#statistics.records++;
    const fresh = this.#usesFirstSeen ? await this.#freshKinds(record) : new Set<SeenKind>();
    const alerts: AuditRecord[] = [];
    for (const rule of this.rules.rules) {
      if (!ruleMatches(rule, record)) continue;
      if (rule.firstSeen !== null && !fresh.has(rule.firstSeen)) continue;
      let count = 1;
      let start = record.start;
      if (rule.rate !== null) {
        const window = this.#rateWindow(rule, record);
        if (window === undefined) continue;
        count = window.count;
        start = window.start;
      }
      const message = rule.message.render(record, {
        rule: rule.name, severity: rule.severity, count, window: rule.rate === null ? "-" : formatWindow(rule.rate.windowMilliseconds),
      });
      alerts.push(alertRecord(rule, record, message, start));
      this.#statistics.alerts++;
      this.#statistics.alertsByRule[rule.name] = (this.#statistics.alertsByRule[rule.name] ?? 0) + 1;
    }
    return alerts;
  }

  /** AuditSink: evaluates a batch; its alerts go to the audit log (when started by a recorder), the outputs and onAlert. */
  async write(records: AuditRecord[]): Promise<void> {
    expectArray("evaluate alert rules", "records", records);
    const alerts: AuditRecord[] = [];
    for (const record of records) alerts.push(...(await this.evaluate(record)));
    if (alerts.length === 0) return;
    this.#context?.store(alerts);
    for (const output of this.outputs) {
      try {
        await output.write(alerts);
      } catch (error) {
        this.#statistics.outputErrors++;
        this.#onOutputError?.(error, output);
      }
    }
    if (this.#onAlert !== undefined) for (const alert of alerts) this.#onAlert(alert);
  }

  statistics(): AlertEngineStatistics {
    return { ...this.#statistics, alertsByRule: { ...this.#statistics.alertsByRule } };
  }

  /** Closes the outputs (letting them deliver what is queued) and the history. */
  async close(): Promise<void> {
    await Promise.all(this.outputs.map(async (output) => {
      try {
        await output.close();
      } catch (error) {
        this.#statistics.outputErrors++;
        this.#onOutputError?.(error, output);
      }
    }));
    await this.#history?.close?.();
  }

  /** Which key kinds of the record were never seen before; remembers them all. */
  async #freshKinds(record: AuditRecord): Promise<Set<SeenKind>> {
    const fresh = new Set<SeenKind>();
    for (const key of recordSeenKeys(record)) {
      if (this.#memory.has(key)) continue;
      const seen = this.#history !== undefined && (await this.#history.seenBefore(key, record));
      this.#memory.remember(key);
      await this.#history?.remember?.(key, record);
      if (!seen) fresh.add(key.kind);
    }
    return fresh;
  }

  /**
   * Counts the record for its rate key; when the window holds `count`
   * matching records, returns the count and the first one's time and starts
   * counting afresh for that key.
   */
  #rateWindow(rule: AlertRule, record: AuditRecord): { count: number; start: Date } | undefined {
    const rate = rule.rate!;
    const keys = this.#rates.get(rule)!;
    const key = rate.per.map((path) => String(recordField(record, path))).join("\u0000");
    const now = record.end.getTime();
    const previous = keys.get(key) ?? [];
    const times = previous.filter((time) => time > now - rate.windowMilliseconds);
    times.push(now);
    keys.delete(key);
    let total = (this.#rateTotals.get(rule) ?? 0) - previous.length;
    if (times.length >= rate.count) {
      let first = record.start.getTime();
      for (const time of times) if (time < first) first = time;
      this.#rateTotals.set(rule, total);
      return { count: times.length, start: new Date(first) };
    }
    keys.set(key, times);
    total += times.length;
    // Bounded memory: the least recently matched keys are forgotten first.
    while (keys.size > this.#rateKeyLimit || total > maximumRateTimes) {
      const [oldest, oldestTimes] = keys.entries().next().value!;
      keys.delete(oldest);
      total -= oldestTimes.length;
    }
    this.#rateTotals.set(rule, total);
    return undefined;
  }
}

/** The alert record for a rule that `trigger` set off. */
export function alertRecord(rule: AlertRule, trigger: AuditRecord, message: string, start: Date = trigger?.start): AuditRecord {
  const operation = "alert record";
  expectObject(operation, "rule", rule);
  expectString(operation, "rule.name", rule.name);
  expectOneOf(operation, "rule.severity", rule.severity, alertSeverities);
  expectAuditRecord(operation, "trigger", trigger);
  expectString(operation, "message", message);
  expectDate(operation, "start", start);
  return {
    sequence: 0,
    kind: "alert",
    start,
    end: trigger.end,
    process: trigger.process,
    flow: trigger.flow,
    bytesSent: null,
    bytesReceived: null,
    packetsSent: null,
    packetsReceived: null,
    closeReason: null,
    dns: trigger.dns,
    drop: null,
    loss: null,
    alert: { rule: rule.name, severity: rule.severity, message, triggerSequence: trigger.sequence > 0 ? trigger.sequence : null },
  };
}

/** A window length as written: 90000 → "90s", 60000 → "1m". */
function formatWindow(milliseconds: number): string {
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (milliseconds % size === 0) return `${milliseconds / size}${unit}`;
  }
  return `${milliseconds}ms`;
}

/** One line for people: `2026-12-04T18:00:00.000Z high ssh-out: message`. */
export function formatAlert(alert: AuditRecord): string {
  expectAuditRecord("format alert", "alert", alert);
  return `${alert.end.toISOString()} ${alert.alert?.severity ?? "-"} ${alert.alert?.rule ?? "-"}: ${alert.alert?.message ?? ""}`;
}

