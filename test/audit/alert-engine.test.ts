import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { AlertEngine, alertRecord, formatAlert } from "../../src/audit/alert-engine.js";
import { AlertRules, formatProblem } from "../../src/audit/alert-rules.js";
import type { AuditRecord } from "../../src/audit/audit-record.js";
import { FileSeenHistory, MemorySeenHistory, seenKeyText, type SeenKey } from "../../src/audit/seen-history.js";
import { UsageError } from "../../src/sys/errors.js";
import { dnsRecord, record } from "./record-builders.js";

const rules = AlertRules.parse(`
rules:
  - name: ssh-out
    severity: high
    message: "{process.command} (pid {process.pid}, uid {process.uid}) opened SSH to {flow.remoteAddress}:{flow.remotePort}"
    filter: tcp dst port 22
    direction: outbound
  - name: root-curl
    severity: medium
    message: "{process.executable} as {process.user}"
    process: "curl*"
    user: root
  - name: tmp-binary
    severity: critical
    message: "{process.executable} talked to {flow.remoteAddress}"
    executable: ["/tmp/*", "/dev/shm/*"]
  - name: inbound-db
    severity: high
    message: "{flow.remoteAddress} reached the database"
    direction: inbound
    filter: tcp dst port 5432 and not src net 10.0.0.0/8
  - name: bad-name
    severity: high
    message: "{dns.queryName}{flow.remoteName} ({kind})"
    dns: "*.evil.example"
`, "engine.yaml");

/** Records, each with the rules that must fire on it (and no other). */
const cases: [AuditRecord, string[]][] = [
  [record({ flow: { remotePort: 22 } }), ["ssh-out"]],
  [record({ flow: { remotePort: 22, direction: "inbound" } }), []],
  [record({ kind: "udp", flow: { remotePort: 22 } }), []],
  [record({ flow: { remotePort: 2222 } }), []],
  [record({ process: { uid: 0, command: "curl" } }), ["root-curl"]],
  [record({ process: { uid: 0, command: "wget" } }), []],
  [record({ process: { uid: 1000, command: "curl" } }), []],
  [record({ process: { uid: 0, command: "curl", executable: "/tmp/x/curl" }, flow: { remotePort: 22 } }), ["ssh-out", "root-curl", "tmp-binary"]],
  [record({ process: { executable: "/dev/shm/miner" } }), ["tmp-binary"]],
  [record({ process: { executable: "/usr/tmp/ok" } }), []],
  [record({ process: null }), []],
  [record({ flow: { direction: "inbound", localPort: 5432, remoteAddress: "198.51.100.7", remotePort: 50000 } }), ["inbound-db"]],
  [record({ flow: { direction: "inbound", localPort: 5432, remoteAddress: "10.1.1.1", remotePort: 50000 } }), []],
  [record({ flow: { direction: "outbound", remotePort: 5432, remoteAddress: "198.51.100.7" } }), []],
  [dnsRecord("c2.evil.example", ["203.0.113.5"]), ["bad-name"]],
  [dnsRecord("C2.EVIL.EXAMPLE", []), ["bad-name"]],
  [dnsRecord("evil.example", []), []],
  [dnsRecord("notevil.example", []), []],
  [record({ flow: { remoteName: "x.evil.example", remoteAddress: "203.0.113.5" } }), ["bad-name"]],
  [record({ kind: "drop", flow: null, process: null, drop: { source: "firewall", rule: "1", sourceAddress: "192.0.2.1", packets: 3, bytes: 180 } }), []],
];

test("each rule fires exactly for the records it names and for no other", async () => {
  const engine = new AlertEngine({ rules });
  for (const [item, expected] of cases) {
    const alerts = await engine.evaluate(item);
    assert.deepEqual(alerts.map((alert) => alert.alert!.rule), expected, JSON.stringify({ process: item.process, flow: item.flow, dns: item.dns?.queryName }));
    for (const alert of alerts) {
      assert.equal(alert.kind, "alert");
      assert.equal(alert.sequence, 0);
      assert.deepEqual(alert.process, item.process);
      assert.deepEqual(alert.flow, item.flow);
    }
  }
  assert.equal(engine.statistics().records, cases.length);
  assert.equal(engine.statistics().alerts, cases.reduce((sum, [, expected]) => sum + expected.length, 0));
});

test("messages are filled in from the record", async () => {
  const engine = new AlertEngine({ rules });
  const [ssh] = await engine.evaluate(record({ sequence: 17, process: { command: "ssh", pid: 99, uid: 1000 }, flow: { remoteAddress: "198.51.100.22", remotePort: 22 } }));
  assert.equal(ssh!.alert!.message, "ssh (pid 99, uid 1000) opened SSH to 198.51.100.22:22");
  assert.equal(ssh!.alert!.severity, "high");
  assert.equal(ssh!.alert!.triggerSequence, 17);
  const [root] = await engine.evaluate(record({ process: { uid: 0, command: "curl", executable: "/usr/bin/curl" } }));
  assert.equal(root!.alert!.message, "/usr/bin/curl as root");
  const [name] = await engine.evaluate(dnsRecord("a.evil.example", []));
  assert.equal(name!.alert!.message, "a.evil.example- (dns)");
  assert.match(formatAlert(name!), /^\d{4}-\d\d-\d\dT.*Z high bad-name: a\.evil\.example- \(dns\)$/);
});

test("first-seen rules fire once per new destination or listener, across runs with a history file", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "netbpf-seen-"));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  const firstSeen = AlertRules.parse(`
rules:
  - { name: new-destination, severity: low, message: "first connection to {flow.remoteAddress}:{flow.remotePort}", firstSeen: destination }
  - { name: new-listener, severity: medium, message: "{process.command} listens on {flow.localPort}", firstSeen: listener }
`);
  const path = join(directory, "seen.txt");
  const run = async (records: AuditRecord[]): Promise<string[]> => {
    const history = FileSeenHistory.open(path);
    const engine = new AlertEngine({ rules: firstSeen, history });
    const fired: string[] = [];
    for (const item of records) for (const alert of await engine.evaluate(item)) fired.push(alert.alert!.message);
    await engine.close();
    return fired;
  };
  const listen = (port: number) => record({ kind: "listen", process: { command: "nginx" }, flow: { direction: null, localAddress: "0.0.0.0", localPort: port, remoteAddress: "0.0.0.0", remotePort: 0 } });
  const to = (address: string, port: number, direction: "outbound" | "inbound" = "outbound") => record({ flow: { remoteAddress: address, remotePort: port, direction } });
  assert.deepEqual(await run([to("192.0.2.1", 443), to("192.0.2.1", 443), to("192.0.2.1", 80), to("192.0.2.2", 443, "inbound"), listen(8080), listen(8080), to("192.0.2.3", 443)]), [
    "first connection to 192.0.2.1:443", "first connection to 192.0.2.1:80", "nginx listens on 8080", "first connection to 192.0.2.3:443",
  ]);
  // A second run remembers the first one's keys through the file.
  assert.deepEqual(await run([to("192.0.2.1", 443), listen(8080), listen(9090), to("192.0.2.9", 22)]), ["nginx listens on 9090", "first connection to 192.0.2.9:22"]);
  assert.equal(readFileSync(path, "utf8").trim().split("\n").length, 6);
});

test("first-seen asks a history provider (as the audit log answers) about keys it has not seen in this run", async () => {
  const asked: string[] = [];
  const history = {
    seenBefore(key: SeenKey, trigger: AuditRecord): Promise<boolean> {
      asked.push(`${key.kind} ${key.address}:${key.port} before ${trigger.sequence}`);
      return Promise.resolve(key.address === "192.0.2.50");
    },
  };
  const engine = new AlertEngine({ rules: AlertRules.parse("rules:\n  - { name: new, severity: low, message: m, firstSeen: destination }\n"), history });
  const fired: number[] = [];
  for (const [sequence, address] of [[1, "192.0.2.50"], [2, "192.0.2.51"], [3, "192.0.2.51"], [4, "192.0.2.50"]] as const) {
    for (const alert of await engine.evaluate(record({ sequence, flow: { remoteAddress: address } }))) fired.push(alert.alert!.triggerSequence!);
  }
  assert.deepEqual(fired, [2]);
  assert.deepEqual(asked, ["destination 192.0.2.50:443 before 1", "destination 192.0.2.51:443 before 2"]);
});

test("rate rules fire on the Nth matching record within the window, per key", async () => {
  const engine = new AlertEngine({
    rules: AlertRules.parse(`
rules:
  - name: scan
    severity: high
    message: "{process.command} made {count} connections to port 22 within {window}"
    filter: dst port 22
    rate: { count: 3, window: 10s, per: process.command }
`),
  });
  const at = (seconds: number, command: string, port = 22) => record({ at: seconds * 1000, process: { command }, flow: { remotePort: port } });
  const timeline: [AuditRecord, boolean][] = [
    [at(0, "a"), false], [at(1, "a"), false], [at(2, "b"), false], [at(3, "a", 80), false],
    [at(4, "a"), true], // a: 0, 1, 4
    [at(5, "a"), false], [at(6, "b"), false], // counting starts afresh after an alert
    [at(20, "b"), false], // b's 2 and 6 are out of the window
    [at(21, "b"), false], [at(22, "b"), true],
    [at(30, "a"), false], [at(45, "a"), false], [at(60, "a"), false], // a: never 3 within 10 s
  ];
  for (const [item, fires] of timeline) {
    const alerts = await engine.evaluate(item);
    assert.equal(alerts.length, fires ? 1 : 0, `${item.process!.command} at ${item.end.toISOString()}`);
    if (fires) {
      assert.equal(alerts[0]!.alert!.message, `${item.process!.command} made 3 connections to port 22 within 10s`);
      assert.ok(alerts[0]!.start.getTime() <= item.end.getTime() - 2000, "the alert spans the window's records");
    }
  }
});

test("as a sink, the engine stores alerts through the recorder's context and sends them to its outputs", async () => {
  const stored: AuditRecord[] = [];
  const sent: AuditRecord[] = [];
  let closed = false;
  const engine = new AlertEngine({
    rules,
    outputs: [{ write: (records) => { sent.push(...records); }, close: async () => { closed = true; } }, { write: () => { throw new Error("broken output"); }, close: async () => {} }],
  });
  engine.start({ store: (records) => stored.push(...records) });
  await engine.write([record({ flow: { remotePort: 22 } }), record({ flow: { remotePort: 80 } }), record({ flow: { remotePort: 22 } })]);
  // Alert records handed back to the engine (as the recorder does with every stored batch) raise nothing.
  await engine.write(stored.slice());
  assert.equal(stored.length, 2);
  assert.deepEqual(sent.map((alert) => alert.alert!.rule), ["ssh-out", "ssh-out"]);
  assert.equal(engine.statistics().outputErrors, 1);
  await engine.close();
  assert.equal(closed, true);
});

test("rate counts keep bounded memory: the least recently matched key is forgotten first", async () => {
  const engine = new AlertEngine({
    rules: AlertRules.parse("rules:\n  - { name: twice, severity: low, message: m, rate: { count: 2, window: 1h, per: process.command } }\n"),
    rateKeyLimit: 2,
  });
  const fired: string[] = [];
  for (const [seconds, command] of [[0, "a"], [1, "b"], [2, "c"], [3, "a"], [4, "c"]] as const) {
    for (const alert of await engine.evaluate(record({ at: seconds * 1000, process: { command } }))) fired.push(`${alert.process!.command}@${seconds}`);
  }
  // "a" was forgotten when "c" came (limit 2), so its second record starts afresh; "c" is still counted.
  assert.deepEqual(fired, ["c@4"]);
});

test("the alert engine, alert records and seen histories refuse bad arguments, naming them", () => {
  const untyped = (f: (...args: never[]) => unknown, ...args: unknown[]): unknown => (f as (...args: unknown[]) => unknown)(...args);
  const rules = AlertRules.fromObject({ rules: [{ name: "any", severity: "low", message: "m" }] });
  const rule = rules.rules[0]!;
  const cases: [() => unknown, RegExp][] = [
    [() => new AlertEngine({ rules: { rules: [] } as never }), /^alert engine: options\.rules must be AlertRules \(from AlertRules\.load, parse or fromObject\), got an object \(Object\)$/],
    [() => new AlertEngine({ rules, outputs: [{ write() {} } as never] }), /options\.outputs\[0\]\.close must be a function, got undefined/],
    [() => new AlertEngine({ rules, memoryLimit: 0 }), /options\.memoryLimit must be an integer ≥ 1, got 0/],
    [() => new AlertEngine({ rules, history: {} as never }), /options\.history\.seenBefore must be a function/],
    [() => untyped(alertRecord, { ...rule, severity: "loud" }, record(), "m"), /^alert record: rule\.severity must be one of "info", "low", "medium", "high", "critical", got "loud"/],
    [() => untyped(alertRecord, rule, { ...record(), kind: "flow" }, "m"), /trigger\.kind must be one of "connection", .*, got "flow"/],
    [() => untyped(alertRecord, rule, record(), 42), /alert record: message must be a string, got 42/],
    [() => untyped(formatAlert, {}), /format alert: alert\.kind must be one of/],
    [() => untyped(seenKeyText, { kind: "destination", protocol: "tcp", address: "192.0.2.1", port: 70000 }), /^seen key text: key\.port must be an integer from 0 to 65535, got 70000/],
    [() => untyped(seenKeyText, { kind: "source", protocol: "tcp", address: "192.0.2.1", port: 1 }), /key\.kind must be one of "destination", "listener", got "source"/],
    [() => new MemorySeenHistory(0), /seen history: limit must be an integer ≥ 1, got 0/],
    [() => new MemorySeenHistory().remember({ kind: "destination", protocol: "tcp", address: "192.0.2.1" } as never), /^remember a seen key: key\.port must be an integer from 0 to 65535, got undefined/],
    [() => new MemorySeenHistory().has("destination tcp 192.0.2.1 443" as never), /^look up a seen key: key must be an object/],
    [() => new AlertEngine({ rules }).start({} as never), /^start alert engine: context\.store must be a function, got undefined/],
    [() => untyped(FileSeenHistory.open, 42), /open seen history: path must be a string, got 42/],
    [() => untyped(formatProblem, { file: "rules.yaml", line: 0, column: 1, message: "m" }), /problem\.line must be an integer ≥ 1, got 0/],
    [() => untyped(AlertRules.parse, undefined), /load alert rules: text must be a string, got undefined/],
  ];
  for (const [call, pattern] of cases) assert.throws(call, (error: unknown) => error instanceof UsageError && pattern.test(error.message), pattern.source);
  // Valid forms still work.
  assert.equal(alertRecord(rule, record(), "m").alert?.severity, "low");
  assert.equal(seenKeyText({ kind: "listener", protocol: "udp", address: "::", port: 53 }), "listener udp :: 53");
});
