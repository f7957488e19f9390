import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import { test } from "node:test";
import { Command } from "commander";
import { AlertEngine } from "../../src/audit/alert-engine.js";
import { SyslogOutput } from "../../src/audit/alert-outputs.js";
import { AlertRulesError } from "../../src/audit/alert-rules.js";
import type { AuditRecord } from "../../src/audit/audit-record.js";
import type { AuditSink } from "../../src/audit/audit-sink.js";
import { JsonLinesSink } from "../../src/audit/json-lines-sink.js";
import type { SeenKey } from "../../src/audit/seen-history.js";
import { addAuditSinkOptions, auditSinkOptions, buildAuditSinks } from "../../src/cli/audit-sink-options.js";
import { UsageError } from "../../src/sys/errors.js";
import { record, sampleRulesText as rulesText } from "../audit/record-builders.js";
import { cliPath } from "../support/cli.js";


/** What an AuditRecorder does with its sinks: number and store each batch, hand it to every sink, store alerts they make with the next batch. */
async function recordBatches(sinks: AuditSink[], batches: AuditRecord[][]): Promise<AuditRecord[]> {
  const stored: AuditRecord[] = [];
  let pending: AuditRecord[] = [];
  for (const sink of sinks) sink.start?.({ store: (records) => pending.push(...records) });
  for (const batch of [...batches, []]) {
    const numbered = [...pending, ...batch].map((item, i) => ({ ...item, sequence: stored.length + 1 + i }));
    pending = [];
    stored.push(...numbered);
    for (const sink of sinks) await sink.write(numbered);
  }
  return stored;
}

test("the sink options build alert rules, JSON lines and syslog sinks that work together as a recorder uses them", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "netbpf-sink-options-"));
  const listener = createSocket("udp4");
  t.after(() => { listener.close(); rmSync(directory, { recursive: true, force: true }); });
  const syslogMessages: string[] = [];
  listener.on("message", (message) => syslogMessages.push(message.toString()));
  listener.bind(0, "127.0.0.1");
  await once(listener, "listening");
  writeFileSync(join(directory, "rules.yaml"), rulesText);

  const command = addAuditSinkOptions(new Command("record").exitOverride());
  command.parse(["--rules", join(directory, "rules.yaml"), "--jsonl", join(directory, "audit.jsonl"), "--syslog", `udp://127.0.0.1:${listener.address().port}`], { from: "user" });
  const options = command.opts();
  assert.deepEqual(Object.keys(options).sort(), ["jsonl", "rules", "syslog"]);
  const asked: string[] = [];
  // An audit log that knows 192.0.2.1:443 from before.
  const log = { seenBefore: (key: SeenKey) => { asked.push(key.address); return key.address === "192.0.2.1"; } };
  const stdout = new PassThrough();
  const sinks = await buildAuditSinks(options, { log, stdout });
  assert.deepEqual(sinks.map((sink) => sink.constructor), [AlertEngine, JsonLinesSink, SyslogOutput]);

  const stored = await recordBatches(sinks, [
    [record({ flow: { remoteAddress: "192.0.2.1", remotePort: 443 } }), record({ process: { command: "ssh" }, flow: { remoteAddress: "192.0.2.2", remotePort: 22 } })],
    [record({ flow: { remoteAddress: "192.0.2.2", remotePort: 22 } })],
  ]);
  const syslog = sinks[2] as SyslogOutput;
  await syslog.drain();
  for (let i = 0; i < 100 && syslogMessages.length < 3; i++) await delay(20);
  for (const sink of sinks) await sink.close();

  const alerts = stored.filter((item) => item.kind === "alert");
  assert.deepEqual(alerts.map((alert) => [alert.alert!.rule, alert.alert!.triggerSequence]), [["ssh-out", 2], ["new-destination", 2], ["ssh-out", 5]]);
  assert.deepEqual(asked, ["192.0.2.1", "192.0.2.2"], "first-seen asked the log once per key");
  // JSON lines: every stored record, alerts included, with their sequence numbers.
  const lines = readFileSync(join(directory, "audit.jsonl"), "utf8").trim().split("\n").map((line) => JSON.parse(line) as AuditRecord);
  assert.deepEqual(lines.map((line) => [line.sequence, line.kind]), stored.map((item) => [item.sequence, item.kind]));
  // Printed alerts (stdout JSON lines) and syslog: the three alerts.
  const printed = String(stdout.read() ?? "").trim().split("\n").map((line) => JSON.parse(line) as AuditRecord);
  assert.deepEqual(printed.map((alert) => alert.alert!.rule), ["ssh-out", "new-destination", "ssh-out"]);
  assert.equal(syslogMessages.length, 3);
  assert.match(syslogMessages[0]!, /^<\d+>1 .* netbpf \d+ alert \[netbpf@32473 rule="ssh-out" severity="high" sequence="3" trigger="2" /);
});

test("bad sink options fail before recording, closing what was already made", async () => {
  const directory = mkdtempSync(join(tmpdir(), "netbpf-sink-options-"));
  try {
    await assert.rejects(buildAuditSinks({ syslog: "udp://127.0.0.1:514" }), (error: unknown) => error instanceof UsageError && /option --syslog: sends alerts, and no alert rules are given \(add --rules FILE\)/.test(error.message));
    writeFileSync(join(directory, "bad.yaml"), "rules:\n  - name: x\n    severity: high\n    message: m\n    filter: port 99999\n");
    await assert.rejects(buildAuditSinks({ rules: join(directory, "bad.yaml") }), (error: unknown) => error instanceof AlertRulesError && error.message.includes("bad.yaml:5:"));
    await assert.rejects(buildAuditSinks({ jsonl: join(directory, "out.jsonl"), clickhouse: "clickhouse.example:8123" }), /ClickHouse sink: .*needs an http or https URL/);
    await assert.rejects(buildAuditSinks({ rules: join(directory, "missing.yaml"), webhook: "ftp://x" }), /load alert rules: cannot read/);
    assert.deepEqual(auditSinkOptions.map((option) => option.attribute), ["rules", "seenFile", "jsonl", "syslog", "webhook", "clickhouse"]);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("netbpf audit rules check lists a valid file and reports every problem of a bad one with exit 2", (t) => {
  const directory = mkdtempSync(join(tmpdir(), "netbpf-rules-check-"));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  // The real command line: `audit rules check` is registered under `audit`, with the CLI's one error path.
  const run = (...args: string[]) => spawnSync(process.execPath, [cliPath, ...args], { encoding: "utf8", timeout: 60_000 });
  writeFileSync(join(directory, "good.yaml"), rulesText);
  const good = run("audit", "rules", "check", join(directory, "good.yaml"));
  assert.equal(good.status, 0, good.stderr);
  assert.match(good.stdout, /good\.yaml: 2 rules, valid\n/);
  assert.match(good.stdout, /\n2 +ssh-out +high +connection,listen,udp,dns,drop,loss +filter "tcp dst port 22"\n/);
  assert.match(good.stdout, /\n6 +new-destination +low +connection,udp +first-seen destination$/m);
  writeFileSync(join(directory, "bad.yaml"), "rules:\n  - name: a\n    severity: loud\n    message: m\n  - name: b\n    severity: low\n    message: m\n    rate: { count: 2, window: soon }\n");
  const bad = run("audit", "rules", "check", join(directory, "bad.yaml"));
  assert.equal(bad.status, 2);
  assert.equal(bad.stdout, "");
  const lines = bad.stderr.trim().split("\n");
  assert.equal(lines.length, 3, bad.stderr);
  assert.match(lines[0]!, /^netbpf: audit rules check: .*bad\.yaml:3: rule "a": severity "loud" is not one of/);
  assert.match(lines[1]!, /^netbpf: audit rules check: .*bad\.yaml:8: rule "b": rate: window "soon" is not a duration/);
  assert.match(lines[2]!, /^netbpf: audit rules check: .*bad\.yaml: 2 problems \(fix them and check again\)$/);
  const one = run("audit", "rules", "check", join(directory, "missing.yaml"));
  assert.equal(one.status, 2);
  assert.match(one.stderr, /^netbpf: load alert rules: cannot read .*missing\.yaml: ENOENT/);
});
