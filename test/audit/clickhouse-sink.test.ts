import assert from "node:assert/strict";
import { createClient } from "@clickhouse/client";
import { test } from "node:test";
import type { AuditRecord } from "../../src/audit/audit-record.js";
import { clickHouseColumns, clickHouseRow, ClickHouseSink, clickHouseTableStatement } from "../../src/audit/clickhouse-sink.js";
import { UsageError } from "../../src/sys/errors.js";
import { skipUnlessTool } from "../support/kernel.js";
import { clickHouseServerPath, freePort, startClickHouse, type ClickHouseTestServer } from "../support/clickhouse-server.js";
import { dnsRecord, record } from "./record-builders.js";

const records: AuditRecord[] = [
  record({ sequence: 1, at: 1234, flow: { remotePort: 443, remoteName: "example.org" } }),
  record({ sequence: 2, at: 2000, kind: "udp", process: { command: "dig", uid: 0 }, flow: { family: "ipv6", localAddress: "2001:db8::5", remoteAddress: "2001:db8::53", remotePort: 53, direction: null } }),
  dnsRecord("example.org", ["192.0.2.80", "2001:db8::80"], { sequence: 3, at: 3000 }),
  record({ sequence: 4, at: 4000, kind: "drop", flow: null, process: null, drop: { source: "firewall", rule: "7", sourceAddress: "198.51.100.9", packets: 12, bytes: 720 } }),
  {
    ...record({ at: 5000, process: { command: 'quote"s\\and\nnewline' }, flow: { remotePort: 22 } }),
    sequence: 5, kind: "alert",
    alert: { rule: "ssh-out", severity: "high", message: "ssh to 192.0.2.10 — über", triggerSequence: 1 },
  },
];

test("records land in a real ClickHouse server: the table is created, a server that starts late is retried", async (t) => {
  if (skipUnlessTool(t, clickHouseServerPath() !== undefined, "clickhouse-server is not installed (apt-get install clickhouse-server)")) return;
  const port = await freePort();
  let server: ClickHouseTestServer | undefined;
  t.after(async () => server?.stop());
  const errors: unknown[] = [];
  const sink = new ClickHouseSink({
    url: `http://127.0.0.1:${port}`, table: "audit_test", host: "test-host", batchSize: 3,
    retry: { initialDelayMilliseconds: 100, factor: 2, maximumDelayMilliseconds: 1000, attempts: 120 },
    onError: (error) => errors.push(error),
  });
  // Nothing listens yet: the records wait in the queue.
  sink.write(records);
  assert.equal(sink.statistics().waiting, records.length);
  server = await startClickHouse({ port });
  await sink.drain();
  assert.deepEqual({ delivered: sink.statistics().delivered, failed: sink.statistics().failed, dropped: sink.statistics().dropped }, { delivered: 5, failed: 0, dropped: 0 });
  assert.ok(errors.length >= 1 && sink.statistics().retries >= 1, "the first tries failed and were retried");
  await sink.close();

  const client = createClient({ url: server.url });
  t.after(() => client.close());
  const columns = await (await client.query({ query: "DESCRIBE TABLE audit_test", format: "JSONEachRow" })).json<{ name: string; type: string }>();
  assert.deepEqual(columns.map((column) => [column.name, column.type]), clickHouseColumns.map(([name, type]) => [name, type]));
  const rows = await (await client.query({
    query: "SELECT host, sequence, kind, toUnixTimestamp(start) AS start_seconds, end_ms, command, uid, protocol, family, direction, remote_address, remote_port, remote_name, dns_query_name, dns_answers, drop_rule, drop_packets, alert_rule, alert_message FROM audit_test ORDER BY sequence",
    format: "JSONEachRow",
  })).json<Record<string, unknown>>();
  assert.equal(rows.length, records.length);
  for (const [i, row] of rows.entries()) {
    const item = records[i]!;
    assert.equal(row.host, "test-host");
    assert.equal(Number(row.sequence), item.sequence);
    assert.equal(row.kind, item.kind);
    assert.equal(Number(row.start_seconds), Math.floor(item.start.getTime() / 1000));
    assert.equal(Number(row.end_ms), item.end.getTime());
    assert.equal(row.command, item.process?.command ?? null);
    assert.equal(row.uid, item.process?.uid ?? null);
    assert.equal(row.protocol, item.flow?.protocol ?? null);
    assert.equal(row.direction, item.flow?.direction ?? null);
    assert.equal(row.remote_address, item.flow?.remoteAddress ?? null);
    assert.equal(row.remote_port, item.flow?.remotePort ?? null);
    assert.equal(row.remote_name, item.flow?.remoteName ?? null);
    assert.equal(row.dns_query_name, item.dns?.queryName ?? null);
    assert.deepEqual(row.dns_answers, item.dns?.answers ?? []);
    assert.equal(row.drop_rule, item.drop?.rule ?? null);
    assert.equal(row.drop_packets === null ? null : Number(row.drop_packets), item.drop?.packets ?? null);
    assert.equal(row.alert_rule, item.alert?.rule ?? null);
    assert.equal(row.alert_message, item.alert?.message ?? null);
  }
  // A second sink finds the table there and appends.
  const again = new ClickHouseSink({ url: `${server.url}/default`, table: "audit_test", host: "other-host" });
  again.write([record({ sequence: 6 })]);
  await again.close();
  const [count] = await (await client.query({ query: "SELECT count() AS rows, uniqExact(host) AS hosts FROM audit_test", format: "JSONEachRow" })).json<{ rows: string; hosts: string }>();
  assert.deepEqual([Number(count!.rows), Number(count!.hosts)], [6, 2]);
});

test("a ClickHouse sink refuses a bad URL or table name at once", () => {
  assert.throws(() => new ClickHouseSink({ url: "localhost:8123" }), /ClickHouse sink: "localhost:8123": ClickHouse's HTTP interface needs an http or https URL/);
  assert.throws(() => new ClickHouseSink({ url: "http://127.0.0.1:1", table: "drop table x" }), /table name/);
});

test("ClickHouse rows, statements and sinks refuse bad arguments, naming them", () => {
  const cases: [() => unknown, RegExp][] = [
    [() => clickHouseTableStatement("audit; DROP TABLE x"), /^ClickHouse table statement: table must be a table name of letters, digits and _ \(optionally database\.table\), got "audit; DROP TABLE x"/],
    [() => clickHouseRow(record({}), 42 as never), /^ClickHouse row: host must be a string, got 42/],
    [() => clickHouseRow({} as never, "host"), /^ClickHouse row: record\.kind must be one of/],
    [() => new ClickHouseSink({ url: "http://127.0.0.1:1", timeoutMilliseconds: 0 }), /ClickHouse sink: options\.timeoutMilliseconds must be an integer ≥ 1, got 0/],
    [() => new ClickHouseSink({ url: "http://127.0.0.1:1", kinds: ["dns", "flows"] as never }), /options\.kinds\[\] must be one of .*, got "flows"/],
  ];
  for (const [call, pattern] of cases) assert.throws(call, (error: unknown) => error instanceof UsageError && pattern.test(error.message), pattern.source);
  assert.match(clickHouseTableStatement("audit.records"), /^CREATE TABLE IF NOT EXISTS audit\.records \(/);
});
