import { test } from "node:test";
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { delay } from "../../src/sys/delay.js";

test("delay waits, ends early on abort, and leaves no abort listener behind round after round", async () => {
  const controller = new AbortController();
  const started = performance.now();
  await delay(30, controller.signal);
  assert.ok(performance.now() - started >= 25);
  for (let round = 0; round < 20; round++) await delay(1, controller.signal);
  assert.equal(getEventListeners(controller.signal, "abort").length, 0);
  const waiting = delay(60_000, controller.signal);
  controller.abort();
  await waiting;
  await delay(60_000, controller.signal);
  await delay(5);
});
