/**
 * AuditRecorder as a library: sinks receive every stored batch in order and
 * may store records of their own (alerts); a failing sink is counted as a
 * `loss` record; firewall drops are counted per rule and source address
 * (the recorder switches the firewall's per-source counting on while it runs).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { AuditLog, emptyAuditRecord } from "../../src/audit/audit-log.js";
import { queryAuditLog } from "../../src/audit/audit-query.js";
import type { AuditRecord } from "../../src/audit/audit-record.js";
import { AuditRecorder } from "../../src/audit/audit-recorder.js";
import type { AuditSink } from "../../src/audit/audit-sink.js";
import { Firewall } from "../../src/firewall/firewall.js";
import { StateStore } from "../../src/state/state-store.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { removeStateRoot, testStateRoot } from "../support/state-root.js";
import { Testbed, udpSenderScript } from "../support/testbed.js";
import { randomServicePort } from "../support/service-port.js";

test("sinks get stored batches in order and can store alerts; a failing sink is a loss record; firewall drops are counted per rule and source", { timeout: 60_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for tracepoints, cgroup programs and XDP")) return;
  const directory = mkdtempSync(join(tmpdir(), "nbau-lib-"));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  const stateRoot = testStateRoot("nbau");
  t.after(() => removeStateRoot(stateRoot));
  const bed = Testbed.create("nbal", { disableIpv6: true });
  t.after(() => bed.destroy());
  const blockedPort = 5300 + Math.floor(Math.random() * 100);
  const rule = bed.inNamespace(bed.b, () => Firewall.open(bed.b.interface, { store: StateStore.open({ root: stateRoot }) }).block({ protocol: "udp", ports: blockedPort, direction: "ingress" }));

  using log = AuditLog.open(join(directory, "audit.db"));
  const seen: AuditRecord[] = [];
  let closed = 0;
  let alerted = false;
  let store: ((records: AuditRecord[]) => void) | undefined;
  const port = randomServicePort();
  const collecting: AuditSink = {
    start(context) {
      store = context.store;
    },
    write(records) {
      seen.push(...records);
      const trigger = records.find((record) => record.kind === "connection" && record.flow?.remotePort === port);
      if (trigger && !alerted) {
        alerted = true;
        const alert = emptyAuditRecord("alert", trigger.end);
        alert.alert = { rule: "test", severity: "low", message: "connection to the test port", triggerSequence: trigger.sequence };
        store!([alert]);
      }
    },
    async close() {
      closed++;
    },
  };
  const failing: AuditSink = {
    write() {
      throw new Error("sink is down");
    },
    async close() {},
  };
  const perRecord: number[] = [];
  const recorder = AuditRecorder.start({ log, sinks: [collecting, failing], onRecord: (record) => perRecord.push(record.sequence), interval: 200, stateRoot, dns: false });

  const server = net.createServer((socket) => socket.end("hello")).listen(port, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  await new Promise<void>((resolve) => net.connect(port, "127.0.0.1").on("data", () => {}).on("close", () => resolve()));
  server.close();
  bed.node(bed.a, udpSenderScript(bed.b.address, blockedPort, 10));
  await new Promise((resolve) => setTimeout(resolve, 1200));
  await recorder.stop();

  assert.equal(closed, 1);
  const sequences = seen.map((record) => record.sequence);
  assert.deepEqual(sequences, [...sequences].sort((a, b) => a - b), "in order");
  assert.deepEqual(perRecord, sequences, "onRecord sees the same records");
  assert.equal(sequences[0], 1);
  assert.equal(sequences.at(-1), log.lastSequence);
  const alerts = queryAuditLog(log, { kinds: ["alert"] });
  assert.equal(alerts.length, 1);
  assert.ok(alerts[0]!.alert!.triggerSequence! < alerts[0]!.sequence);
  const losses = queryAuditLog(log, { kinds: ["loss"] }).filter((record) => record.loss!.reason.includes("sink is down"));
  assert.ok(losses.length > 0, "the failing sink is recorded as a loss");
  assert.equal(losses[0]!.loss!.what, "sink");
  const drops = queryAuditLog(log, { kinds: ["drop"] });
  assert.equal(drops.length >= 1, true, JSON.stringify(drops));
  assert.equal(drops.reduce((total, record) => total + record.drop!.packets, 0), 10);
  assert.equal(drops[0]!.drop!.rule, `${bed.b.interface}#${rule.id}`);
  assert.equal(drops[0]!.drop!.source, "firewall");
  assert.deepEqual([...new Set(drops.map((record) => record.drop!.sourceAddress))], [bed.a.address], "drops name their source, not \"any\"");

  // Stopped, the recorder switched the per-source counting off again: more drops leave the source map as it was.
  const firewall = bed.inNamespace(bed.b, () => Firewall.open(bed.b.interface, { store: StateStore.open({ root: stateRoot }) }));
  const sourcePackets = () => firewall.dropSources().reduce((total, source) => total + Number(source.packets), 0);
  assert.equal(sourcePackets(), 10);
  bed.node(bed.a, udpSenderScript(bed.b.address, blockedPort, 5));
  const rulePackets = () => firewall.rules().find((candidate) => candidate.id === rule.id)!.packets;
  for (const deadline = Date.now() + 10_000; rulePackets() < 15n && Date.now() < deadline;) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(rulePackets(), 15n, "the rule still drops");
  assert.equal(sourcePackets(), 10, "no per-source counting without a recorder");
  assert.equal(log.verify().ok, true);
});

test("a process that exits right after connecting is recorded with its parent; a connection open at stop is recorded as open", { timeout: 60_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for tracepoints")) return;
  const directory = mkdtempSync(join(tmpdir(), "nbau-lib-"));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  using log = AuditLog.open(join(directory, "audit.db"));
  const accepted: net.Socket[] = [];
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    accepted.push(socket);
  }).listen(0, "127.0.0.1");
  t.after(() => server.close());
  await new Promise((resolve) => server.once("listening", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const recorder = AuditRecorder.start({ log, udp: false, dns: false, drops: false, interval: 100 });
  // This process (and the recorder in it) waits until the child has connected, reset the connection and exited: /proc has nothing of it when its record is made.
  const child = spawnSync(process.execPath, ["-e", `const s = require("net").connect(${port}, "127.0.0.1", () => { s.on("close", () => process.exit(0)); s.resetAndDestroy(); });`]);
  assert.equal(child.status, 0, String(child.stderr));
  assert.equal(existsSync(`/proc/${child.pid}`), false);
  const open = net.connect(port, "127.0.0.1");
  t.after(() => open.destroy());
  await new Promise((resolve) => open.once("connect", resolve));
  await new Promise((resolve) => setTimeout(resolve, 300));
  await recorder.stop();
  const records = queryAuditLog(log, { port, kinds: ["connection"] });
  const exited = records.filter((record) => record.process?.pid === child.pid);
  assert.equal(exited.length, 1);
  assert.equal(exited[0]!.process!.parentPid, process.pid);
  assert.equal(exited[0]!.process!.command, "node");
  assert.equal(exited[0]!.flow!.direction, "outbound");
  const stillOpen = records.filter((record) => record.closeReason === "open");
  assert.deepEqual(stillOpen.map((record) => record.flow!.direction).sort(), ["inbound", "outbound"]);
  assert.ok(stillOpen.every((record) => record.process?.pid === process.pid && record.process.parentPid === process.ppid && record.process.executable === process.execPath));
});
