/**
 * The audit group: audit log, alert engine and outputs, seen histories,
 * delivery queue, and the server's metrics sources and dashboard parts.
 * Nothing leaves the machine: webhook, syslog and ClickHouse targets are
 * 127.0.0.1 ports nobody listens on (in the probe's empty namespace), tried
 * once and given up at once; databases and files go into the probe's
 * working folder; metrics sources and the dashboard feed are made without
 * starting them (their watchers attach in start()).
 */
import { Writable } from "node:stream";
import { join } from "node:path";
import {
  AlertEngine, AlertRules, AuditLog, BalancerMetricsSource, ClickHouseSink, ConnectionTable, DashboardAccess, DashboardFeed,
  DeliveryQueue, FileSeenHistory, JsonLinesAlertSource, JsonLinesSink, MemorySeenHistory, PortLabels, SyslogOutput,
  TcpMetricsSource, TrafficHistory, TrafficMetricsSource, WebhookOutput,
} from "../../../src/index.js";
import type { AcceptedCalls, InstanceFactory } from "./types.js";
import { sampleRulesText } from "../../audit/record-builders.js";

/** A port on 127.0.0.1 that nothing in the probe's namespace listens on (discard). */
const deadPort = 9;
const onceOnly = { attempts: 1 };
let fileNumber = 0;
const freshPath = (name: string): string => join(process.cwd(), `${name}-${process.pid}-${++fileNumber}`);

let rules: AlertRules | undefined;
const alertRules = (): AlertRules => (rules ??= AlertRules.parse(sampleRulesText));

/** Something the probe can dispose of: stop() detaches what start() attached. */
const stoppable = <T extends { stop(): void }>(source: T): T => Object.assign(source, { [Symbol.dispose]: () => source.stop() });

const discard = (): Writable => new Writable({ write: (_chunk, _encoding, done) => done() });

export const factories: Record<string, InstanceFactory> = {
  AlertEngine: () => new AlertEngine({ rules: alertRules(), history: new MemorySeenHistory() }),
  AuditLog: () => AuditLog.open(freshPath("audit.db")),
  BalancerMetricsSource: () => new BalancerMetricsSource({ stateRoot: join(process.cwd(), "state") }),
  ClickHouseSink: () => new ClickHouseSink({ url: `http://127.0.0.1:${deadPort}`, retry: onceOnly, timeoutMilliseconds: 500 }),
  ConnectionTable: () => new ConnectionTable(),
  DashboardAccess: () => DashboardAccess.forListen("127.0.0.1"),
  DashboardFeed: () => stoppable(new DashboardFeed({ stateRoot: join(process.cwd(), "state") })),
  DeliveryQueue: () => new DeliveryQueue<unknown>({ deliver: async () => {}, retry: onceOnly }),
  FileSeenHistory: () => FileSeenHistory.open(freshPath("seen")),
  JsonLinesAlertSource: () => new JsonLinesAlertSource(freshPath("alerts.jsonl")),
  JsonLinesSink: () => new JsonLinesSink({ stream: discard() }),
  MemorySeenHistory: () => new MemorySeenHistory(),
  PortLabels: () => new PortLabels(20, [22], [32768, 60999]),
  SyslogOutput: () => new SyslogOutput({ target: `udp://127.0.0.1:${deadPort}`, retry: onceOnly }),
  TcpMetricsSource: () => stoppable(new TcpMetricsSource()),
  TrafficHistory: () => new TrafficHistory({ capacity: 60 }),
  TrafficMetricsSource: () => stoppable(new TrafficMetricsSource()),
  WebhookOutput: () => new WebhookOutput({ url: `http://127.0.0.1:${deadPort}/hook`, retry: onceOnly, timeoutMilliseconds: 500 }),
};

const shortClose = "a close timeout of 42 ms is valid: what is still queued after 42 ms is dropped and counted";

export const accepted: AcceptedCalls = {
  "AuditLog#applyRetention": { calls: ["(42)"], reason: "now is a time in ms since the epoch; 42 (1970) is a valid time that removes nothing" },
  "AuditLog#removeThrough": { calls: ["(42)"], reason: "removes the records through sequence 42 (none in an empty log)" },
  "AuditLog#rows": { calls: ["(42)"], reason: "the rows after sequence 42" },
  "ClickHouseSink#close": { calls: ["(42)"], reason: shortClose },
  "ConnectionTable#graph": { calls: ["(42)"], reason: "the 42 heaviest edges" },
  "ConnectionTable#view": { calls: ["()", "(undefined)"], reason: "no filter: every connection, the default row limit" },
  "DashboardFeed#update": { calls: ["()", "(undefined)"], reason: "no filter: the update with every connection" },
  "DeliveryQueue#close": { calls: ["(42)"], reason: shortClose },
  "JsonLinesAlertSource#recent": { calls: ["(42)"], reason: "the latest 42 alerts (none: the file does not exist)" },
  "PortLabels#label": { calls: ["(42)"], reason: "42 is a port; it gets its own label value" },
  "SyslogOutput#close": { calls: ["(42)"], reason: shortClose },
  "TrafficHistory#since": { calls: ["(42)"], reason: "the samples later than 42 ms since the epoch" },
  "WebhookOutput#close": { calls: ["(42)"], reason: shortClose },
};
