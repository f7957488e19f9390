import { test } from "node:test";
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { TrafficWatcher, watchTraffic, type TrafficSnapshot } from "../../src/monitor/traffic-watcher.js";
import { PortLabels } from "../../src/server/port-labels.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";

/** Binds `count` UDP sockets on loopback (ports chosen by the kernel). */
async function udpReceivers(count: number): Promise<dgram.Socket[]> {
  const sockets: dgram.Socket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = dgram.createSocket("udp4");
    socket.on("message", () => {});
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    sockets.push(socket);
  }
  return sockets;
}

async function send(sender: dgram.Socket, port: number, bytes: number): Promise<void> {
  await new Promise<void>((resolve, reject) => sender.send(Buffer.alloc(bytes), port, "127.0.0.1", (error) => (error ? reject(error) : resolve())));
}

test("watchTraffic yields snapshots by process and remote host, ends on abort and detaches", { timeout: 60_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for cgroup skb programs")) return;
  const [receiver] = await udpReceivers(1);
  const sender = dgram.createSocket("udp4");
  t.after(() => {
    receiver!.close();
    sender.close();
  });
  const port = receiver!.address().port;
  const controller = new AbortController();
  const snapshots: TrafficSnapshot[] = [];
  let sent = false;
  for await (const snapshot of watchTraffic({ by: "process", ports: [port], interval: 300, signal: controller.signal })) {
    snapshots.push(snapshot);
    if (!sent) {
      // Both sockets were created before watching: their ports are attributed through procfs.
      for (let i = 0; i < 20; i++) await send(sender, port, 700);
      sent = true;
      continue;
    }
    controller.abort();
  }
  assert.ok(snapshots.length >= 2 && snapshots.length <= 3, `${snapshots.length} snapshots`);
  const last = snapshots.at(-1)!;
  assert.equal(last.by, "process");
  const mine = last.rows.find((row) => row.process?.pid === process.pid);
  assert.ok(mine, `a row for this process: ${JSON.stringify(last.rows)}`);
  // This process both sent and received the 20 datagrams.
  assert.equal(mine.payloadOut, 20 * 700);
  assert.equal(mine.payloadIn, 20 * 700);
  assert.equal(mine.packetsIn, 20);
  assert.equal(mine.bytesOut, 20 * (700 + 28));

  // by remote, in-process, with the class.
  using watcher = TrafficWatcher.open({ by: "remote", ports: [port], processes: false });
  for (let i = 0; i < 5; i++) await send(sender, port, 100);
  const byRemote = watcher.snapshot();
  const loopback = byRemote.rows.find((row) => row.remoteAddress === "127.0.0.1");
  assert.ok(loopback, JSON.stringify(byRemote.rows));
  assert.equal(loopback.family, "ipv4");
  assert.equal(loopback.packetsIn, 5);
  assert.equal(loopback.packetsOut, 5);
  assert.equal(loopback.process, null);
  assert.ok(loopback.bytesInPerSecond > 0);
});

test("a full LRU map evicts keys and the watcher counts the evictions", { timeout: 60_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for cgroup skb programs")) return;
  const receivers = await udpReceivers(40);
  const sender = dgram.createSocket("udp4");
  t.after(() => {
    for (const receiver of receivers) receiver.close();
    sender.close();
  });
  const ports = receivers.map((receiver) => receiver.address().port);
  // 16 keys at most; 40 receiving ports (and the sender's port): at least 25 keys must go.
  using watcher = TrafficWatcher.open({ by: "port", ports, maxEntries: 16, processes: false });
  for (const port of ports) await send(sender, port, 10);
  const snapshot = watcher.snapshot();
  assert.ok(snapshot.entries <= 16, `${snapshot.entries} entries`);
  assert.ok(snapshot.evictions >= 41 - 16, `${snapshot.evictions} evictions counted`);
  assert.equal(snapshot.evictions + snapshot.entries >= 41, true);
  assert.equal(snapshot.lost, 0);
});

test("watchTraffic checks its options before attaching anything", async () => {
  await assert.rejects(async () => {
    for await (const _ of watchTraffic({ by: "nothing" as never })) break;
  }, /options\.by must be one of "port", "conn", "process", "remote", got "nothing"/);
  await assert.rejects(async () => {
    for await (const _ of watchTraffic({ ports: [70000] })) break;
  }, /options\.ports\[0\] must be an integer from 1 to 65535, got 70000/);
  await assert.rejects(async () => {
    for await (const _ of watchTraffic({ interval: 0 })) break;
  }, /options\.interval must be a positive number of milliseconds, got 0/);
  await assert.rejects(async () => {
    for await (const _ of watchTraffic({ duration: -1 })) break;
  }, /options\.duration must be a number of milliseconds ≥ 0/);
  assert.throws(() => TrafficWatcher.open({ maxEntries: 2 }), /options\.maxEntries must be an integer from 16 to 16777216, got 2/);
  assert.throws(() => TrafficWatcher.open({ ports: "80" as never }), /options\.ports must be an array, got "80"/);
  assert.throws(() => TrafficWatcher.open({ interfaces: ["lo", 3 as never] }), /options\.interfaces\[1\] must be a string, got 3/);
  assert.throws(() => TrafficWatcher.open({ times: "yes" as never }), /options\.times must be true or false/);
});

test("PortLabels: pinned ports, the first N others, ephemeral ports and the rest as other", () => {
  const labels = new PortLabels(2, [9999], [32768, 60999]);
  assert.equal(labels.label(40000), "ephemeral");
  assert.equal(labels.label(80), "80");
  assert.equal(labels.label(443), "443");
  assert.equal(labels.label(22), "other");
  assert.equal(labels.label(9999), "9999");
  assert.equal(labels.label(80), "80");
  assert.equal(labels.label(0), "none");
  assert.deepEqual(labels.ports, [80, 443, 9999]);
});
