import assert from "node:assert/strict";
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
