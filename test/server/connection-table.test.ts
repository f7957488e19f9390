import { test } from "node:test";
import assert from "node:assert/strict";
import type { TcpEvent } from "../../src/monitor/tcp-watcher.js";
import type { TrafficRow, TrafficSnapshot } from "../../src/monitor/traffic-watcher.js";
import { ConnectionFilter } from "../../src/server/connection-filter.js";
import { ConnectionTable } from "../../src/server/connection-table.js";

function row(localPort: number, remotePort: number, bytesPerSecond: number, extra: Partial<TrafficRow> = {}): TrafficRow {
  return {
    key: `tcp 10.0.0.1:${localPort} 10.0.0.2:${remotePort} eth0`,
    protocol: "tcp",
    family: "ipv4",
    localAddress: "10.0.0.1",
    localPort,
    remoteAddress: "10.0.0.2",
    remotePort,
    interface: "eth0",
    process: null,
    packetsIn: 1, bytesIn: 100, payloadIn: 0, packetsOut: 1, bytesOut: 100, payloadOut: 0,
    packetsInPerSecond: bytesPerSecond / 1000, bytesInPerSecond: bytesPerSecond, packetsOutPerSecond: 0, bytesOutPerSecond: 0,
    ...extra,
  };
}

function snapshot(time: number, rows: TrafficRow[]): TrafficSnapshot {
  const zero = { packetsIn: 0, bytesIn: 0, payloadIn: 0, packetsOut: 0, bytesOut: 0, payloadOut: 0, packetsInPerSecond: 0, bytesInPerSecond: 0, packetsOutPerSecond: 0, bytesOutPerSecond: 0 };
  return { time: new Date(time).toISOString(), interval: 1, by: "conn", source: "cgroup", interfaces: [], rows, totals: zero, entries: rows.length, evictions: 0, lost: 0, packetsSeen: 0 };
}

function tcpEvent(type: TcpEvent["type"], localPort: number, remotePort: number, time: number, extra: Partial<TcpEvent> = {}): TcpEvent {
  return {
    type, timestamp: 0n, time: new Date(time), socket: "0x1", pid: 42, parentPid: 1, uid: 1000, cgroupId: "1", command: "curl", role: "active", family: "ipv4",
    localAddress: "10.0.0.1", localPort, remoteAddress: "10.0.0.2", remotePort, state: "ESTABLISHED", oldState: null,
    durationMilliseconds: 3, connectLatencyMilliseconds: null, bytesSent: 0, bytesReceived: 0, smoothedRttMilliseconds: 0.25,
    retransmits: 0, resetsSent: 0, resetsReceived: 0, resetDirection: null, ...extra,
  };
}

test("rows are sorted by rate, joined with TCP's open time, RTT and process, and idle ones leave", () => {
  const table = new ConnectionTable({ idleSeconds: 5 });
  table.observe(tcpEvent("open", 40001, 443, 10_000));
  let rows = table.update(snapshot(11_000, [row(40000, 80, 10), row(40001, 443, 5000)]), 11_000);
  assert.deepEqual(rows.map((r) => r.remotePort), [443, 80]);
  assert.equal(rows[0]!.rttMilliseconds, 0.25);
  assert.deepEqual(rows[0]!.process, { pid: 42, command: "curl" });
  assert.equal(rows[0]!.durationMilliseconds, 1003, "from the SYN (3 ms before the open event)");
  assert.equal(rows[0]!.open, true);
  assert.equal(rows[1]!.open, false);
  // Idle for longer than idleSeconds: the connection TCP does not know leaves; the open one stays.
  rows = table.update(snapshot(17_000, [row(40000, 80, 0), row(40001, 443, 0)]), 17_000);
  assert.deepEqual(rows.map((r) => r.remotePort), [443]);
  table.observe(tcpEvent("close", 40001, 443, 17_500));
  rows = table.update(snapshot(18_000, [row(40000, 80, 0), row(40001, 443, 0)]), 18_000);
  assert.deepEqual(rows, []);
  // Traffic again: listed again.
  rows = table.update(snapshot(19_000, [row(40000, 80, 1)]), 19_000);
  assert.deepEqual(rows.map((r) => r.remotePort), [80]);
});

test("the view filters and limits; the graph joins processes to hosts", () => {
  const table = new ConnectionTable();
  const rows = [row(1000, 80, 300, { process: { pid: 7, command: "nginx" } }), row(1001, 80, 200, { process: { pid: 7, command: "nginx" } }), row(1002, 22, 100)];
  table.update(snapshot(1000, rows), 1000);
  assert.equal(table.view(undefined, 2).rows.length, 2);
  assert.deepEqual(table.view(undefined, 2), { ...table.view(undefined, 2), total: 3, matched: 3 });
  const view = table.view(ConnectionFilter.compile("port 22"));
  assert.deepEqual([view.total, view.matched, view.rows[0]!.remotePort], [3, 1, 22]);
  const graph = table.graph();
  assert.deepEqual(graph.processes, ["nginx (7)", "unknown"]);
  assert.deepEqual(graph.hosts, ["10.0.0.2"]);
  assert.deepEqual(graph.edges.map((edge) => [edge.process, edge.bytesPerSecond, edge.connections]), [["nginx (7)", 500, 2], ["unknown", 100, 1]]);
});

test("the TCP side is bounded", () => {
  const table = new ConnectionTable({ maximumTracked: 100 });
  for (let port = 1; port <= 1000; port++) table.observe(tcpEvent("open", port, 443, port));
  assert.equal(table.tracked, 100);
  // Events other than open/accept do not add connections; listeners are ignored.
  table.observe(tcpEvent("retransmit", 5000, 443, 1));
  table.observe(tcpEvent("open", 5001, 0, 1, { role: "listener" }));
  assert.equal(table.tracked, 100);
});

test("bad options and filters are refused, naming them", () => {
  assert.throws(() => new ConnectionTable({ idleSeconds: 0 }), /connection table: options\.idleSeconds must be a positive number of seconds, got 0/);
  assert.throws(() => new ConnectionTable({ idleSeconds: "10" as never }), /options\.idleSeconds must be a positive number of seconds, got "10"/);
  assert.throws(() => new ConnectionTable({ maximumTracked: 0 }), /options\.maximumTracked must be an integer ≥ 1, got 0/);
  assert.equal(new ConnectionTable({ idleSeconds: 0.5 }).idleMilliseconds, 500);
  const table = new ConnectionTable();
  assert.throws(() => table.observe({ ...tcpEvent("open", 40001, 443, 1), time: 1 } as never), /observe a TCP event: event\.time must be a valid Date, got 1/);
  assert.throws(() => table.update({ rows: [] } as never), /update connections: snapshot\.time must be a string, got undefined/);
  assert.throws(() => table.update(snapshot(0, []), Number.NaN), /update connections: now must be a time in milliseconds since the epoch, got NaN/);
  assert.throws(() => table.view("tcp port 443" as never), /view connections: filter must be a ConnectionFilter \(from ConnectionFilter\.compile\) or undefined, got "tcp port 443"/);
  assert.deepEqual(table.view(undefined).rows, []);
});
