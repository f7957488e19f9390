import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import { test } from "node:test";
import { watchTcp, type TcpEvent } from "../../src/monitor/tcp-watcher.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";

test("watchTcp with types listen/close: only those events, and stop() delivers every event left in the ring", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root")) return;
  const watcher = watchTcp({ types: ["listen", "close"] });
  t.after(() => watcher.close());
  const events: TcpEvent[] = [];
  // A consumer that falls behind: after its first event it waits until stop(), so the rest stays in the ring.
  let release!: () => void;
  const stopped = new Promise<void>((resolve) => (release = resolve));
  const consumed = (async () => {
    for await (const event of watcher) {
      events.push(event);
      await stopped;
    }
  })();
  const server = net.createServer((socket) => socket.end()).listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const connections = 20;
  await Promise.all(Array.from({ length: connections }, () => new Promise<void>((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("data", () => {});
    socket.on("error", reject);
    socket.on("close", () => resolve());
  })));
  await new Promise((resolve) => server.close(resolve));
  // What the consumer has not read yet must still come after stop().
  watcher.stop();
  release();
  await consumed;
  assert.equal(watcher.closed, true);
  const mine = events.filter((event) => event.localPort === port || event.remotePort === port);
  assert.deepEqual([...new Set(events.map((event) => event.type))].sort(), ["close", "listen"].filter((type) => events.some((event) => event.type === type)));
  assert.equal(mine.filter((event) => event.type === "listen").length, 1, "one listen event for the server");
  // Both ends of every connection close (the server's accepted side and the client's).
  assert.equal(mine.filter((event) => event.type === "close").length, 2 * connections);
  assert.ok(mine.every((event) => event.type !== "close" || event.state === "CLOSE"));
  assert.equal(watcher.lost, 0);
});

test("watchTcp asked for close only: openConnections() lists the connections still open, before and after stop()", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root")) return;
  const watcher = watchTcp({ types: ["close"] });
  t.after(() => watcher.close());
  const accepted: net.Socket[] = [];
  const server = net.createServer((socket) => void accepted.push(socket)).listen(0, "127.0.0.1");
  t.after(() => server.close());
  await new Promise((resolve) => server.once("listening", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect(port, "127.0.0.1");
  t.after(() => client.destroy());
  await new Promise((resolve) => client.once("connect", resolve));
  while (accepted.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  const mine = (events: TcpEvent[]) => events.filter((event) => event.localPort === port || event.remotePort === port);
  const open = mine(watcher.openConnections());
  assert.deepEqual(open.map((event) => `${event.type} ${event.role} ${event.pid}`).sort(), [`open active ${process.pid}`, `open passive ${process.pid}`]);
  assert.ok(open.every((event) => event.parentPid === process.ppid && event.command !== null));
  watcher.stop();
  for await (const event of watcher) assert.equal(event.type, "close");
  assert.equal(mine(watcher.openConnections()).length, 2, "the connections open when stop() detached the programs");
});

test("watchTcp: a process that exits right after connecting keeps its parent pid (read in the kernel)", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root")) return;
  const watcher = watchTcp({ types: ["close"] });
  t.after(() => watcher.close());
  const server = net.createServer((socket) => socket.on("error", () => {})).listen(0, "127.0.0.1");
  t.after(() => server.close());
  await new Promise((resolve) => server.once("listening", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const closes: TcpEvent[] = [];
  const consumed = (async () => {
    for await (const event of watcher) if (event.remotePort === port) closes.push(event);
  })();
  // Blocks this process until the child has connected, reset its connection (CLOSE at once) and exited: its /proc entry is gone before any event is read.
  const child = spawnSync(process.execPath, ["-e", `const s = require("net").connect(${port}, "127.0.0.1", () => { s.on("close", () => process.exit(0)); s.resetAndDestroy(); });`]);
  assert.equal(child.status, 0, String(child.stderr));
  assert.equal(existsSync(`/proc/${child.pid}`), false);
  watcher.stop();
  await consumed;
  assert.equal(closes.length, 1);
  assert.equal(closes[0]!.pid, child.pid);
  assert.equal(closes[0]!.parentPid, process.pid);
  assert.equal(closes[0]!.command, "node");
});

test("watchTcp with wakeup: false: events wait in the ring for readAvailable(); detach() leaves the rest readable; it cannot be iterated", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root")) return;
  const watcher = watchTcp({ types: ["close"], wakeup: false });
  t.after(() => watcher.close());
  await assert.rejects(async () => {
    for await (const event of watcher) assert.fail(`no event expected: ${event.type}`);
  }, /not iterated/);
  const server = net.createServer((socket) => socket.end()).listen(0, "127.0.0.1");
  t.after(() => server.close());
  await new Promise((resolve) => server.once("listening", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const connect = () => new Promise<void>((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("data", () => {});
    socket.on("error", reject);
    socket.on("close", () => resolve());
  });
  const mine = (events: TcpEvent[]) => events.filter((event) => event.localPort === port || event.remotePort === port);
  await Promise.all(Array.from({ length: 5 }, connect));
  const first: TcpEvent[] = [];
  watcher.readAvailable((event) => first.push(event));
  // Both ends of each connection, each once.
  assert.equal(mine(first).length, 10);
  assert.ok(first.every((event) => event.type === "close"));
  const again: TcpEvent[] = [];
  watcher.readAvailable((event) => again.push(event));
  assert.equal(mine(again).length, 0, "read once");
  // Kernel records as bytes, made into events later.
  await Promise.all(Array.from({ length: 3 }, connect));
  const records: Buffer[] = [];
  watcher.readAvailableRecords((record) => records.push(Buffer.from(record)));
  assert.equal(mine(records.flatMap((record) => watcher.decode(record))).length, 6);
  // Events committed before detach() are still there after it; none come after.
  await connect();
  watcher.detach();
  await connect();
  const last: TcpEvent[] = [];
  watcher.readAvailable((event) => last.push(event));
  assert.equal(mine(last).length, 2, "the connection closed before detach(), both ends");
  assert.equal(watcher.lost, 0);
  watcher.close();
  assert.equal(watcher.readAvailable(() => assert.fail("closed")), 0);
});
