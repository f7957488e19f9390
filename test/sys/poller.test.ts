import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { UsageError } from "../../src/sys/errors.js";
import { FileDescriptor } from "../../src/sys/file-descriptor.js";
import { libcEventfd, libcWrite } from "../../src/sys/libc.js";
import { Poller } from "../../src/sys/poller.js";

function eventfd(): FileDescriptor {
  return new FileDescriptor(libcEventfd(0, 0x80000 | 0x800));
}

function signal(fd: FileDescriptor): void {
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(1n);
  assert.equal(libcWrite(fd.value, one, 8), 8);
}

test("wait resolves when a watched fd becomes readable, and not before", async () => {
  using poller = new Poller();
  using fd = eventfd();
  using readiness = poller.watch([fd.value]);
  let resolved = false;
  const waiting = readiness.wait().then(() => { resolved = true; });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(resolved, false);
  signal(fd);
  await waiting;
  assert.equal(resolved, true);
  assert.equal(poller.waiting, 0);
});

test("wait on a set of fds resolves when any one is readable", async () => {
  using poller = new Poller();
  using first = eventfd();
  using second = eventfd();
  using readiness = poller.watch([first.value, second.value]);
  const waiting = readiness.wait();
  signal(second);
  await waiting;
});

test("abort rejects the wait promptly and hands the worker thread back", async () => {
  using poller = new Poller();
  using fd = eventfd();
  using readiness = poller.watch([fd.value]);
  const controller = new AbortController();
  const waiting = readiness.wait(controller.signal);
  await new Promise((r) => setTimeout(r, 20));
  const started = performance.now();
  controller.abort(new Error("stop"));
  await assert.rejects(waiting, /stop/);
  assert.ok(performance.now() - started < 500, "abort took too long");
  // The blocked epoll_wait returns (woken by the eventfd) instead of holding a pool thread.
  const before = poller.wakeups;
  for (let i = 0; i < 50 && poller.wakeups === before; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(poller.wakeups, before + 1);
  assert.equal(poller.waiting, 0);
});

test("an already aborted signal rejects at once", async () => {
  using poller = new Poller();
  using fd = eventfd();
  using readiness = poller.watch([fd.value]);
  await assert.rejects(readiness.wait(AbortSignal.abort(new Error("already"))), /already/);
});

test("many waiters share one worker: the libuv pool stays free for fs", async () => {
  using poller = new Poller();
  const fds = Array.from({ length: 24 }, () => eventfd());
  const watches = fds.map((fd) => poller.watch([fd.value]));
  try {
    const waits = watches.map((w) => w.wait());
    // With one blocked worker per waiter the 4-thread pool would be exhausted and this would hang.
    const text = await Promise.race([
      readFile("/proc/self/stat", "utf8"),
      new Promise<string>((_, reject) => setTimeout(() => reject(new Error("fs starved")), 2000)),
    ]);
    assert.ok(text.length > 0);
    assert.equal(poller.waiting, 24);
    fds.forEach(signal);
    await Promise.all(waits);
    assert.equal(poller.waiting, 0);
  } finally {
    watches.forEach((w) => w.close());
    fds.forEach((fd) => fd.close());
  }
});

test("one wait at a time per readiness; closing rejects a pending wait", async () => {
  using poller = new Poller();
  using fd = eventfd();
  const readiness = poller.watch([fd.value]);
  const waiting = readiness.wait();
  await assert.rejects(readiness.wait(), UsageError);
  readiness.close();
  await assert.rejects(waiting, /closed/);
  await assert.rejects(readiness.wait(), /closed/);
});

test("an idle wait uses no CPU and no wakeups", async () => {
  using poller = new Poller();
  using fd = eventfd();
  using readiness = poller.watch([fd.value]);
  const controller = new AbortController();
  const waiting = readiness.wait(controller.signal).catch(() => undefined);
  const cpu = process.cpuUsage();
  const wakeups = poller.wakeups;
  await new Promise((r) => setTimeout(r, 1000));
  const used = process.cpuUsage(cpu);
  assert.equal(poller.wakeups, wakeups, "epoll_wait returned while nothing happened");
  assert.ok(used.user + used.system < 50_000, `idle wait used ${(used.user + used.system) / 1000} ms of CPU in 1 s`);
  controller.abort();
  await waiting;
});
