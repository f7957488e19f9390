import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { AlertEngine } from "../../src/audit/alert-engine.js";
import { AlertRules } from "../../src/audit/alert-rules.js";
import { auditColumns, AuditLog, auditPageSize, auditSchemaVersion, emptyAuditRecord, genesisHash } from "../../src/audit/audit-log.js";
import type { AuditRecord } from "../../src/audit/audit-record.js";
import { UsageError } from "../../src/sys/errors.js";
import { runCli } from "../support/cli.js";

const require = createRequire(import.meta.url);
const Database = require("better-sqlite3") as typeof import("better-sqlite3");

function folder(t: { after(fn: () => void): void }): string {
  const path = mkdtempSync(join(tmpdir(), "nbau-log-"));
  t.after(() => rmSync(path, { recursive: true, force: true }));
  return path;
}

export function connection(index: number, time = Date.now()): AuditRecord {
  const record = emptyAuditRecord("connection", new Date(time - 50), new Date(time));
  record.process = { pid: 1000 + (index % 7), parentPid: 1, uid: index % 3, command: `cmd${index % 5}`, executable: `/usr/bin/cmd${index % 5}`, cgroupId: "42", cgroupPath: "/test", containerId: null };
  record.flow = { protocol: "tcp", family: "ipv4", direction: "outbound", localAddress: "127.0.0.1", localPort: 40000 + (index % 20000), remoteAddress: `10.0.${index % 4}.1`, remotePort: 443, remoteName: null };
  record.bytesSent = index * 10;
  record.bytesReceived = index * 20;
  record.closeReason = "fin";
  return record;
}

test("records are stored with sequences, read back as written, and the chain verifies", (t) => {
  const path = join(folder(t), "audit.db");
  using log = AuditLog.open(path);
  const stored = log.append([connection(1), connection(2)]);
  assert.deepEqual(stored.map((record) => record.sequence), [1, 2]);
  const dns = emptyAuditRecord("dns", new Date());
  dns.dns = { queryName: "example.test", queryType: "A", responseCode: "NOERROR", answers: ["192.0.2.9"], clientAddress: "127.0.0.1", clientPort: 5555, serverAddress: "127.0.0.53", serverPort: 53 };
  log.append([dns]);
  assert.equal(log.count, 3);
  assert.deepEqual(log.verify(), { ok: true, records: 3, firstBad: null, reason: null });
  // A new log: 16 KiB pages (cheaper inserts), incremental auto-vacuum, WAL (docs/audit.md, Storage).
  assert.equal(log.database.pragma("page_size", { simple: true }), auditPageSize);
  assert.equal(auditPageSize, 16384);
  assert.equal(log.database.pragma("auto_vacuum", { simple: true }), 2);
  assert.equal(log.database.pragma("journal_mode", { simple: true }), "wal");
});

test("each row's hash is SHA-256(previous hash, newline, the JSON array of its columns), as docs/audit.md says", (t) => {
  const path = join(folder(t), "audit.db");
  using log = AuditLog.open(path);
  log.append([connection(1), connection(2)]);
  let previous = genesisHash;
  const rows = [...log.rows()];
  assert.equal(rows.length, 2);
  for (const row of rows) {
    const content = JSON.stringify(auditColumns.map((column) => row[column]));
    const expected = createHash("sha256").update(previous).update("\n").update(content).digest("hex");
    assert.equal(row.hash, expected);
    previous = expected;
  }
});

test("store() takes records from an iterable one at a time, chains them like append(), and keeps none", (t) => {
  const path = join(folder(t), "audit.db");
  using log = AuditLog.open(path);
  log.append([connection(1)]);
  const made: number[] = [];
  function* records(): Generator<AuditRecord> {
    for (let index = 2; index <= 4; index++) {
      made.push(index);
      yield connection(index);
    }
  }
  assert.equal(log.store(records()), 3);
  assert.deepEqual(made, [2, 3, 4]);
  assert.equal(log.store([]), 0);
  assert.equal(log.lastSequence, 4);
  const rows = [...log.rows()];
  assert.deepEqual(rows.map((row) => [row.sequence, row.bytes_sent]), [[1, 10], [2, 20], [3, 30], [4, 40]]);
  assert.deepEqual(log.verify(), { ok: true, records: 4, firstBad: null, reason: null });
  // A record that cannot be made stops the whole transaction: nothing of it is stored.
  function* failing(): Generator<AuditRecord> {
    yield connection(5);
    throw new Error("no more");
  }
  assert.throws(() => log.store(failing()));
  assert.equal(log.count, 4);
  assert.equal(log.lastSequence, 4);
  log.append([connection(6)]);
  assert.deepEqual(log.verify(), { ok: true, records: 5, firstBad: null, reason: null });
});

test("a schema 1 log is read as it is, and migrated (indexes only) when opened for writing", (t) => {
  const path = join(folder(t), "audit.db");
  {
    using log = AuditLog.open(path);
    log.append([1, 2, 3].map((index) => connection(index)));
  }
  // Make it a schema 1 file: its ten indexes and user_version 1.
  const old = new Database(path);
  old.exec(`
    DROP INDEX records_listen_port;
    CREATE INDEX records_pid_end ON records(pid, end_ms);
    CREATE INDEX records_uid_end ON records(uid, end_ms);
    CREATE INDEX records_remote_port_end ON records(remote_port, end_ms);
    CREATE INDEX records_local_port_end ON records(local_port, end_ms);
    CREATE INDEX records_kind_end ON records(kind, end_ms);
    PRAGMA user_version = 1;`);
  old.close();
  const indexes = (database: import("better-sqlite3").Database) =>
    (database.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'records_%' ORDER BY name").all() as { name: string }[]).map((row) => row.name);
  {
    using reader = AuditLog.open(path, { readOnly: true });
    assert.equal(reader.count, 3);
    assert.equal(reader.verify().ok, true);
    assert.equal(reader.database.pragma("user_version", { simple: true }), 1);
  }
  {
    using writer = AuditLog.open(path);
    assert.equal(writer.database.pragma("user_version", { simple: true }), auditSchemaVersion);
    assert.deepEqual(indexes(writer.database), ["records_command_end", "records_dns_name", "records_end", "records_listen_port", "records_remote_address_end", "records_remote_name"]);
    writer.append([connection(4)]);
    assert.deepEqual(writer.verify(), { ok: true, records: 4, firstBad: null, reason: null });
  }
  const future = new Database(path);
  future.pragma(`user_version = ${auditSchemaVersion + 1}`);
  future.close();
  assert.throws(() => AuditLog.open(path, { readOnly: true }), (error: unknown) => error instanceof UsageError && /schema version 3/.test(error.message));
});

test("a changed, a removed and a cut-off record each fail verify, naming the record", (t) => {
  const path = join(folder(t), "audit.db");
  {
    using log = AuditLog.open(path);
    for (let batch = 0; batch < 3; batch++) log.append([1, 2, 3].map((index) => connection(batch * 3 + index)));
  }
  const database = new Database(path);
  database.prepare("UPDATE records SET bytes_sent = bytes_sent + 1 WHERE sequence = 5").run();
  database.close();
  {
    using log = AuditLog.open(path, { readOnly: true });
    const result = log.verify();
    assert.equal(result.ok, false);
    assert.equal(result.firstBad, 5);
    assert.match(result.reason!, /record 5 does not match its hash/);
  }
  const cli = runCli(["audit", "verify", "--db", path]);
  assert.equal(cli.status, 1, cli.stderr);
  assert.match(cli.stderr, /^netbpf: audit verify: .*record 5 is bad/);

  const removed = join(folder(t), "removed.db");
  {
    using log = AuditLog.open(removed);
    log.append([1, 2, 3, 4].map((index) => connection(index)));
  }
  const second = new Database(removed);
  second.prepare("DELETE FROM records WHERE sequence = 2").run();
  second.prepare("DELETE FROM records WHERE sequence = 4").run();
  second.close();
  {
    using log = AuditLog.open(removed, { readOnly: true });
    const result = log.verify();
    assert.equal(result.firstBad, 3);
    assert.match(result.reason!, /records 2-2 are missing/);
  }
});

test("retention by age and by size removes the oldest records and the rest still verifies", (t) => {
  const directory = folder(t);
  const now = Date.now();
  {
    using log = AuditLog.open(join(directory, "age.db"), { retainMilliseconds: 3_600_000 });
    log.append([connection(1, now - 7_200_000), connection(2, now - 5_000_000), connection(3, now - 60_000), connection(4, now)]);
    assert.equal(log.applyRetention(now), 2);
    assert.equal(log.count, 2);
    assert.deepEqual(log.verify(), { ok: true, records: 2, firstBad: null, reason: null });
    log.append([connection(5)]);
    assert.equal(log.verify().ok, true);
  }
  using sized = AuditLog.open(join(directory, "size.db"), { maximumBytes: 400_000 });
  for (let batch = 0; batch < 40; batch++) sized.append(Array.from({ length: 100 }, (_, index) => connection(batch * 100 + index)));
  sized.applyRetention();
  assert.ok(sized.usedBytes() <= 400_000, `${sized.usedBytes()} bytes used`);
  assert.ok(sized.count > 100 && sized.count < 4000, `${sized.count} records kept`);
  assert.equal(sized.verify().ok, true);
});

test("a corrupted, foreign or unwritable database is refused with a one-line UsageError and left unchanged", (t) => {
  const directory = folder(t);
  const garbage = join(directory, "garbage.db");
  writeFileSync(garbage, "this is not a database\n".repeat(100));
  const before = readFileSync(garbage);
  assert.throws(() => AuditLog.open(garbage), (error: unknown) => error instanceof UsageError && /is not an SQLite database/.test(error.message));
  assert.deepEqual(readFileSync(garbage), before);
  const cli = runCli(["audit", "record", "--db", garbage, "--duration", "1s"]);
  assert.equal(cli.status, 2);
  assert.equal(cli.stderr.trim().split("\n").length, 1, cli.stderr);
  assert.deepEqual(readFileSync(garbage), before);

  // A real audit database with damaged pages.
  const damaged = join(directory, "damaged.db");
  {
    using log = AuditLog.open(damaged);
    for (let batch = 0; batch < 20; batch++) log.append(Array.from({ length: 100 }, (_, index) => connection(batch * 100 + index)));
  }
  const bytes = readFileSync(damaged);
  for (let offset = 4096 * 3; offset < bytes.length - 4096; offset += 4096) bytes.fill(0xa5, offset + 8, offset + 400);
  writeFileSync(damaged, bytes);
  const query = runCli(["audit", "query", "--db", damaged]);
  assert.equal(query.status, 2, query.stderr);
  assert.match(query.stderr, /^netbpf: open audit log: .*corrupted/);
  assert.equal(query.stderr.trim().split("\n").length, 1);
  const record = runCli(["audit", "record", "--db", damaged, "--duration", "1s"]);
  assert.equal(record.status, 2, record.stderr);
  assert.deepEqual(readFileSync(damaged), bytes);

  const foreign = join(directory, "foreign.db");
  const other = new Database(foreign);
  other.exec("CREATE TABLE t (x)");
  other.close();
  assert.throws(() => AuditLog.open(foreign), /not a netbpf audit log/);

  const unwritable = runCli(["audit", "record", "--db", join(directory, "missing-folder", "audit.db"), "--duration", "1s"]);
  assert.equal(unwritable.status, 2);
  assert.match(unwritable.stderr, /^netbpf: open audit log: cannot create .*\(give a writable --db path\)\n$/);
  const missing = runCli(["audit", "query", "--db", join(directory, "none.db")]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /there is no audit database/);
});

test("bad options are one line and exit 2", (t) => {
  const path = join(folder(t), "audit.db");
  for (const args of [
    ["audit", "record", "--db", path, "--retain", "soon"],
    ["audit", "record", "--db", path, "--max-size", "big"],
    ["audit", "record", "--db", path, "--interval", "0s"],
    ["audit", "query", "--db", path, "--since", "yesterday"],
    ["audit", "query", "--db", path, "--bogus"],
    ["audit", "query", "--db", path, "--port", "70000"],
  ]) {
    const result = runCli(args);
    assert.equal(result.status, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, /^netbpf: /);
  }
});

test("kill -9 while writing loses at most the batch being written; the file opens and verifies", async (t) => {
  const path = join(folder(t), "audit.db");
  const logModule = fileURLToPath(new URL("../../src/audit/audit-log.js", import.meta.url));
  const script = `
import { AuditLog, emptyAuditRecord } from ${JSON.stringify(logModule)};
const log = AuditLog.open(${JSON.stringify(path)});
for (let batch = 0; ; batch++) {
  const records = [];
  for (let i = 0; i < 50; i++) {
    const record = emptyAuditRecord("loss", new Date());
    record.loss = { what: "test", count: batch * 50 + i, reason: "x".repeat(200) };
    records.push(record);
  }
  log.append(records);
  if (batch === 5) process.stdout.write("written\\n");
}`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script]);
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", () => resolve());
    child.on("exit", (code) => reject(new Error(`writer exited early (${code})`)));
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  child.kill("SIGKILL");
  await new Promise((resolve) => child.once("exit", resolve));
  using log = AuditLog.open(path);
  const count = log.count;
  assert.ok(count >= 300, `${count} records survived`);
  assert.equal(count % 50, 0, "only whole batches are stored");
  assert.equal(log.lastSequence, count);
  assert.deepEqual(log.verify(), { ok: true, records: count, firstBad: null, reason: null });
  assert.equal(log.database.pragma("integrity_check", { simple: true }), "ok");
});

test("first-seen rules ask the log: a destination or listener stored in an earlier record is not new", async (t) => {
  const path = join(folder(t), "audit.db");
  using log = AuditLog.open(path);
  const listen = emptyAuditRecord("listen", new Date());
  listen.flow = { protocol: "tcp", family: "ipv4", direction: null, localAddress: "0.0.0.0", localPort: 8080, remoteAddress: "0.0.0.0", remotePort: 0, remoteName: null };
  const [oldConnection, oldListener] = log.append([connection(1), listen]);
  // Stored again later (a new run): the same destination and listener, and one new destination.
  const [sameDestination, sameListener, newDestination] = log.append([connection(1), { ...listen, sequence: 0 }, connection(2)]);
  const rules = AlertRules.parse([
    "rules:",
    "  - { name: new-destination, severity: low, message: \"new {flow.remoteAddress}\", firstSeen: destination }",
    "  - { name: new-listener, severity: medium, message: \"new listener {flow.localPort}\", firstSeen: listener }",
  ].join("\n"));
  const engine = new AlertEngine({ rules, history: log });
  const fired = async (record: AuditRecord) => (await engine.evaluate(record)).map((alert) => alert.alert!.rule);
  assert.deepEqual(await fired(oldConnection!), ["new-destination"], "first in the log");
  assert.deepEqual(await fired(oldListener!), ["new-listener"]);
  const later = new AlertEngine({ rules, history: log });
  const firedLater = async (record: AuditRecord) => (await later.evaluate(record)).map((alert) => alert.alert!.rule);
  assert.deepEqual(await firedLater(sameDestination!), [], "10.0.1.1:443 was stored before");
  assert.deepEqual(await firedLater(sameListener!), [], "port 8080 was listened on before");
  assert.deepEqual(await firedLater(newDestination!), ["new-destination"], "10.0.2.1:443 never was");
  assert.equal(log.seenBefore({ kind: "destination", protocol: "udp", address: "10.0.1.1", port: 443 }, newDestination!), false, "the protocol is part of the key");
});
