/**
 * Options of `netbpf audit record` that add a sink (src/audit/audit-sink.ts):
 * alert rules (--rules FILE), JSON lines (--jsonl PATH), syslog (--syslog
 * TARGET), a webhook (--webhook URL), ClickHouse (--clickhouse URL). Each
 * entry becomes one option; when it is given, `create` makes the sink before
 * recording starts (so a bad rules file or URL fails with exit 2 before
 * anything is attached). Sinks receive every stored batch, in order, and are
 * closed when recording stops.
 *
 * To add a sink: append an entry to `auditSinkOptions`.
 * `addAuditSinkOptions(command)` and `buildAuditSinks(options, context)` do
 * the same for any commander command.
 */
import type { Command } from "commander";
import { AlertEngine } from "../audit/alert-engine.js";
import { stdoutAlertOutput, SyslogOutput, WebhookOutput } from "../audit/alert-outputs.js";
import { AlertRules } from "../audit/alert-rules.js";
import type { AuditSink } from "../audit/audit-sink.js";
import { ClickHouseSink } from "../audit/clickhouse-sink.js";
import { JsonLinesSink } from "../audit/json-lines-sink.js";
import { FileSeenHistory, type SeenHistory } from "../audit/seen-history.js";
import { UsageError } from "../sys/errors.js";

/** What a sink option's `create` may use besides its value. */
export interface AuditSinkOptionContext {
  /**
   * The audit log. When it answers `seenBefore(key, record)` (SeenHistory),
   * first-seen rules ask it about the recorded history.
   */
  log?: unknown;
  /** Every parsed option of the command (e.g. to see --jsonl - next to --rules). */
  options?: Record<string, unknown>;
  /** Where printed alerts and `--jsonl -` go (default: standard output). */
  stdout?: NodeJS.WritableStream;
}

export interface AuditSinkOption {
  /** Commander flags, e.g. "--jsonl <path>". */
  flags: string;
  description: string;
  /** The option's attribute name as commander stores it (e.g. "jsonl", "clickhouse"). */
  attribute: string;
  /** Makes the sink from the option's value; throws a UsageError for bad input. */
  create(value: string, context: AuditSinkOptionContext): AuditSink | Promise<AuditSink>;
}

/** Reports an output's delivery failures on standard error, at most once a minute per output. */
function deliveryReporter(description: string): (error: unknown) => void {
  let last = -Infinity;
  let suppressed = 0;
  return (error) => {
    const now = Date.now();
    if (now - last < 60_000) {
      suppressed++;
      return;
    }
    last = now;
    const more = suppressed > 0 ? ` (${suppressed} more failures since the last report)` : "";
    suppressed = 0;
    process.stderr.write(`netbpf: audit: ${description}: ${(error instanceof Error ? error.message : String(error)).split("\n")[0]}${more}\n`);
  };
}

function isSeenHistory(value: unknown): value is SeenHistory {
  return typeof value === "object" && value !== null && typeof (value as SeenHistory).seenBefore === "function";
}

function requireRules(option: string, context: AuditSinkOptionContext): void {
  const options = context.options;
  if (options !== undefined && (options.rules === undefined || options.rules === false)) {
    throw new UsageError(`option ${option}`, "sends alerts, and no alert rules are given", "add --rules FILE");
  }
}

export const auditSinkOptions: AuditSinkOption[] = [
  {
    flags: "--rules <file>",
    description: "alert rules (YAML or JSON, docs/audit-alerts.md): alerts are stored, printed on standard output as JSON lines and sent to --syslog/--webhook",
    attribute: "rules",
    create(value, context) {
      const rules = AlertRules.load(value);
      const seenFile = context.options?.seenFile;
      let history: SeenHistory | undefined;
      if (typeof seenFile === "string") history = FileSeenHistory.open(seenFile);
      else if (isSeenHistory(context.log)) history = context.log;
      // With --jsonl -, every record (alerts included) already goes to standard output.
      const printed = context.options?.jsonl !== "-";
      return new AlertEngine({
        rules,
        history,
        outputs: printed ? [stdoutAlertOutput(context.stdout)] : [],
        onOutputError: deliveryReporter("alert output"),
      });
    },
  },
  {
    flags: "--seen-file <path>",
    description: "keep the destinations and listeners seen by first-seen rules in this file (default: ask the audit log)",
    attribute: "seenFile",
    create(value, context) {
      if (context.options !== undefined && context.options.rules === undefined) throw new UsageError("option --seen-file", "is for first-seen alert rules, and no rules are given", "add --rules FILE");
      // The rules sink opens the file; this option adds no sink of its own.
      return { write() {}, async close() {} };
    },
  },
  {
    flags: "--jsonl <path>",
    description: "also write every record as a JSON line to this file (appended), or - for standard output",
    attribute: "jsonl",
    create(value, context) {
      return value === "-" && context.stdout !== undefined ? new JsonLinesSink({ stream: context.stdout }) : new JsonLinesSink({ path: value });
    },
  },
  {
    flags: "--syslog <target>",
    description: "send alerts to syslog (RFC 5424): udp://HOST[:PORT], tcp://HOST[:PORT] or unix:/dev/log",
    attribute: "syslog",
    create(value, context) {
      requireRules("--syslog", context);
      const output: SyslogOutput = new SyslogOutput({ target: value, onError: (error) => report(error) });
      const report = deliveryReporter(output.description);
      return output;
    },
  },
  {
    flags: "--webhook <url>",
    description: "POST each alert as JSON to this URL (retried with backoff; never holds recording up)",
    attribute: "webhook",
    create(value, context) {
      requireRules("--webhook", context);
      const output: WebhookOutput = new WebhookOutput({ url: value, onError: (error) => report(error) });
      const report = deliveryReporter(output.description);
      return output;
    },
  },
  {
    flags: "--clickhouse <url>",
    description: "also insert every record into ClickHouse (http://[USER:PASSWORD@]HOST:8123[/DATABASE]; table netbpf_audit, created if missing)",
    attribute: "clickhouse",
    create(value) {
      const sink: ClickHouseSink = new ClickHouseSink({ url: value, onError: (error) => report(error) });
      const report = deliveryReporter(sink.description);
      return sink;
    },
  },
];

/** Adds the sink options to a command. */
export function addAuditSinkOptions(command: Command): Command {
  for (const option of auditSinkOptions) command.option(option.flags, option.description);
  return command;
}

/**
 * Makes the sinks the parsed options ask for, in the table's order (alert
 * rules first, so their alerts are stored with the records). On bad input,
 * closes what it made and throws the UsageError.
 */
export async function buildAuditSinks(options: Record<string, unknown>, context: Omit<AuditSinkOptionContext, "options"> = {}): Promise<AuditSink[]> {
  const sinks: AuditSink[] = [];
  try {
    for (const option of auditSinkOptions) {
      const value = options[option.attribute];
      if (value === undefined || value === false) continue;
      sinks.push(await option.create(String(value), { ...context, options }));
    }
  } catch (error) {
    await Promise.all(sinks.map((sink) => sink.close().catch(() => undefined)));
    throw error;
  }
  return sinks;
}
