/**
 * Where the dashboard finds recent alerts. The audit recorder is a separate
 * tool: the dashboard only asks an AlertSource for the latest alerts and
 * shows nothing (an empty list) when there is no source or it has none. One
 * source ships here: a JSON-lines file (one alert object per line, appended
 * by whatever records alerts), of which only the tail is read.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { expectInteger, expectObject, expectString } from "../sys/argument-checks.js";

export type DashboardAlertSeverity = "info" | "warning" | "critical";

/** An alert as the page shows it. */
export interface DashboardAlert {
  /** ISO 8601. */
  time: string;
  severity: DashboardAlertSeverity;
  /** What kind of alert ("port-scan", "new-listener", …). */
  kind: string;
  message: string;
}

export interface AlertSource {
  /** Shown on the page ("alerts.jsonl", "audit", …). */
  readonly name: string;
  /** The latest alerts, newest first, at most `limit`; [] when there are none (never throws for a missing file). */
  recent(limit: number): DashboardAlert[] | Promise<DashboardAlert[]>;
}

const maximumText = 400;
const severities: readonly DashboardAlertSeverity[] = ["info", "warning", "critical"];

function text(value: unknown): string | undefined {
  if (typeof value !== "string" && typeof value !== "number") return undefined;
  const result = String(value).replace(/[\u0000-\u001f\u007f]/g, " ").trim();
  return result === "" ? undefined : result.slice(0, maximumText);
}

/**
 * Reads one alert from a parsed JSON line: an audit record of kind "alert"
 * (severity low → info, medium → warning, high → critical), or leniently
 * any object with `time` (or
 * `timestamp`, ISO text or ms since the epoch), `severity` (or `level`;
 * "warn"/"error" understood), `kind` (or `type`, `rule`), `message` (or
 * `summary`, `description`). Undefined when there is no message.
 */
export function normalizeAlert(value: unknown): DashboardAlert | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  let record = value as Record<string, unknown>;
  // An audit record of kind "alert" (`netbpf audit record --rules … --jsonl FILE`): the alert is nested.
  const nested = record.alert;
  if (record.kind === "alert" && typeof nested === "object" && nested !== null && !Array.isArray(nested)) {
    const alert = nested as Record<string, unknown>;
    const auditLevel = typeof alert.severity === "string" ? alert.severity : "info";
    record = { time: record.start, severity: auditLevel === "medium" ? "warning" : auditLevel === "low" ? "info" : auditLevel, kind: alert.rule, message: alert.message };
  }
  const message = text(record.message ?? record.summary ?? record.description);
  if (message === undefined) return undefined;
  const rawTime = record.time ?? record.timestamp;
  const parsed = typeof rawTime === "number" ? rawTime : typeof rawTime === "string" ? Date.parse(rawTime) : NaN;
  const level = (text(record.severity ?? record.level) ?? "info").toLowerCase();
  const severity: DashboardAlertSeverity = severities.includes(level as DashboardAlertSeverity) ? (level as DashboardAlertSeverity) : level === "warn" ? "warning" : level === "error" || level === "critical" || level === "high" ? "critical" : "info";
  return {
    time: Number.isFinite(parsed) ? new Date(parsed).toISOString() : new Date(0).toISOString(),
    severity,
    kind: text(record.kind ?? record.type ?? record.rule) ?? "alert",
    message,
  };
}

/** Alerts appended as JSON lines to a file; reads at most the last `tailBytes` of it. */
export class JsonLinesAlertSource implements AlertSource {
  readonly name: string;
  readonly path: string;
  readonly tailBytes: number;

  constructor(path: string, options: { tailBytes?: number } = {}) {
    this.path = expectString("alert source", "path", path);
    expectObject("alert source", "options", options);
    if (options.tailBytes !== undefined) expectInteger("alert source", "options.tailBytes", options.tailBytes, 1);
    this.name = path.split("/").pop() ?? path;
    this.tailBytes = options.tailBytes ?? 256 * 1024;
  }

  recent(limit: number): DashboardAlert[] {
    expectInteger("read recent alerts", "limit", limit, 0);
    let descriptor: number;
    try {
      descriptor = openSync(this.path, "r");
    } catch {
      return [];
    }
    try {
      const size = fstatSync(descriptor).size;
      const length = Math.min(size, this.tailBytes);
      const buffer = Buffer.alloc(length);
      const read = readSync(descriptor, buffer, 0, length, size - length);
      const lines = buffer.subarray(0, read).toString("utf8").split("\n");
      if (size > length) lines.shift(); // a partial first line
      const alerts: DashboardAlert[] = [];
      for (let index = lines.length - 1; index >= 0 && alerts.length < limit; index--) {
        const line = lines[index]!.trim();
        if (line === "") continue;
        try {
          const alert = normalizeAlert(JSON.parse(line));
          if (alert) alerts.push(alert);
        } catch {
          // not JSON: skip the line
        }
      }
      return alerts;
    } catch {
      return [];
    } finally {
      closeSync(descriptor);
    }
  }
}
