import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { drained } from "../../src/pcap/drained.js";

/** A stream that takes one chunk at a time and holds it until release() is called. */
function slowStream(): { stream: Writable; release(): void } {
  let pending: (() => void) | undefined;
  const stream = new Writable({ highWaterMark: 4, write(_chunk, _encoding, callback) { pending = callback; } });
  return { stream, release: () => { const callback = pending; pending = undefined; callback?.(); } };
}

test("drained resolves at once for a stream that needs no draining", async () => {
  const { stream } = slowStream();
  assert.equal(stream.writableNeedDrain, false);
  await drained(stream);
  assert.equal(stream.listenerCount("drain"), 0);
});

test("drained waits for the drain of a full stream, then stops listening", async () => {
  const { stream, release } = slowStream();
  assert.equal(stream.write("12345678"), false);
  let resolved = false;
  const waiting = drained(stream).then(() => { resolved = true; });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(resolved, false, "still full");
  release();
  await waiting;
  assert.equal(resolved, true);
  assert.deepEqual([stream.listenerCount("drain"), stream.listenerCount("close"), stream.listenerCount("error")], [0, 0, 0]);
});

test("drained resolves when the stream is destroyed instead of draining", async () => {
  const { stream } = slowStream();
  stream.on("error", () => {});
  assert.equal(stream.write("12345678"), false);
  const waiting = drained(stream);
  stream.destroy(new Error("reader went away"));
  await waiting;
  assert.equal(stream.listenerCount("drain"), 0);
});
