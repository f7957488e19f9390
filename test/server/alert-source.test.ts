import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JsonLinesAlertSource, normalizeAlert } from "../../src/server/alert-source.js";
import { AlertRules } from "../../src/audit/alert-rules.js";
import { alertRecord } from "../../src/audit/alert-engine.js";
import { emptyAuditRecord } from "../../src/audit/audit-log.js";
import { JsonLinesSink } from "../../src/audit/json-lines-sink.js";

test("alerts are read from the tail of a JSON-lines file, newest first; bad lines are skipped", (t) => {
  const folder = mkdtempSync(join(tmpdir(), "nbui-alerts-"));
  t.after(() => rmSync(folder, { recursive: true, force: true }));
  const path = join(folder, "alerts.jsonl");
  const source = new JsonLinesAlertSource(path, { tailBytes: 4096 });
  assert.deepEqual(source.recent(10), [], "a missing file is no alerts");
  writeFileSync(path, "");
  assert.deepEqual(source.recent(10), []);
  for (let index = 0; index < 200; index++) appendFileSync(path, `${JSON.stringify({ time: 1_700_000_000_000 + index * 1000, level: index % 2 ? "warn" : "error", type: "scan", summary: `alert ${index}` })}\n`);
  appendFileSync(path, "not json\n[1,2]\n{\"message\":\n\n");
  const alerts = source.recent(5);
  assert.deepEqual(alerts.map((alert) => alert.message), ["alert 199", "alert 198", "alert 197", "alert 196", "alert 195"]);
  assert.equal(alerts[0]!.severity, "warning");
  assert.equal(alerts[1]!.severity, "critical");
  assert.equal(alerts[0]!.kind, "scan");
  assert.equal(alerts[0]!.time, new Date(1_700_000_199_000).toISOString());
  // Only the tail is read: the oldest lines are out of reach of a 4 KiB tail.
  assert.ok(source.recent(1000).length < 200);
});

test("alerts are normalized leniently and made safe to show", () => {
  assert.equal(normalizeAlert({ kind: "x" }), undefined);
  assert.equal(normalizeAlert(null), undefined);
  assert.equal(normalizeAlert("text"), undefined);
  const alert = normalizeAlert({ message: `line\u0000two\n${"x".repeat(1000)}`, severity: "CRITICAL", time: "garbage" })!;
  assert.equal(alert.severity, "critical");
  assert.equal(alert.kind, "alert");
  assert.equal(alert.time, new Date(0).toISOString());
  assert.ok(alert.message.length <= 400);
  assert.doesNotMatch(alert.message, /[\u0000-\u001f]/);
});

test("the dashboard reads the alert records `audit record --rules … --jsonl FILE` writes", (t) => {
  const folder = mkdtempSync(join(tmpdir(), "nb-alerts-audit-"));
  t.after(() => rmSync(folder, { recursive: true, force: true }));
  const path = join(folder, "audit.jsonl");
  const rules = AlertRules.parse("rules:\n  - name: ssh-out\n    severity: medium\n    message: \"{process.command} opened SSH to {flow.remoteAddress}\"\n    filter: tcp dst port 22\n");
  const trigger = emptyAuditRecord("connection", new Date(1_700_000_000_000), new Date(1_700_000_005_000));
  trigger.process = { pid: 7, parentPid: 1, uid: 0, command: "ssh", executable: "/usr/bin/ssh", cgroupId: null, cgroupPath: null, containerId: null };
  trigger.flow = { protocol: "tcp", family: "ipv4", direction: "outbound", localAddress: "10.0.0.1", localPort: 40000, remoteAddress: "192.0.2.9", remotePort: 22, remoteName: null };
  const rule = rules.rules[0]!;
  assert.ok(AlertRules.matchesConditions(rule, trigger));
  const sink = new JsonLinesSink({ path });
  sink.write([trigger, alertRecord(rule, trigger, "ssh opened SSH to 192.0.2.9")]);
  return sink.close().then(() => {
    const alerts = new JsonLinesAlertSource(path).recent(10);
    assert.deepEqual(alerts, [{ time: new Date(1_700_000_000_000).toISOString(), severity: "warning", kind: "ssh-out", message: "ssh opened SSH to 192.0.2.9" }]);
  });
});
