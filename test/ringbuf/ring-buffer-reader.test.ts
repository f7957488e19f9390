import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { BpfMap } from "../../src/core/map.js";
import { RingBufferReader } from "../../src/ringbuf/ring-buffer-reader.js";
import { MapType } from "../../src/sys/bpf-constants.js";
import { NetbpfError, UsageError } from "../../src/sys/errors.js";
import { Poller } from "../../src/sys/poller.js";
import { createCounters, expectedRecord, produce, readCounter, ringBufferProducer } from "../support/event-producers.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";

interface Fixture {
  ring: BpfMap;
  counters: BpfMap;
  program: ReturnType<typeof ringBufferProducer>;
  reader: RingBufferReader;
  poller: Poller;
  [Symbol.dispose](): void;
}

function fixture(options: { size?: number; recordSize?: number; discardEvery?: number } = {}): Fixture {
  const ring = BpfMap.create({ type: MapType.Ringbuf, maxEntries: options.size ?? 16384, name: "nb_rb_test" });
  const counters = createCounters();
  const program = ringBufferProducer({ ringBuffer: ring, counters, recordSize: options.recordSize ?? 64, discardEvery: options.discardEvery });
  const poller = new Poller();
  const reader = new RingBufferReader(ring, { lostCounter: { map: counters, key: 1 }, poller });
  return {
    ring, counters, program, reader, poller,
    [Symbol.dispose]() {
      reader.close();
      poller.close();
      program.close();
      counters.close();
      ring.close();
    },
  };
}

function needsKernel(t: TestContext): boolean {
  return skipUnlessKernel(t, isRoot(), "needs root to create BPF maps and load programs");
}

function checkRecord(record: Buffer, sequence: number, recordSize: number): void {
  assert.equal(record.length, recordSize, `record ${sequence} has the wrong length`);
  assert.ok(record.equals(expectedRecord(sequence, recordSize)), `record ${sequence} has the wrong content: ${record.toString("hex")}`);
}

test("ring buffer events arrive complete and in order, across many wrap-arounds of the ring", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture({ size: 16384, recordSize: 64 });
  const batch = 100;
  const batches = 50; // 5000 records of 72 bytes: 22 times the ring
  produce(f.program, batch);
  let expected = 0;
  for await (const record of f.reader.records()) {
    checkRecord(record, expected, 64);
    expected++;
    if (expected % batch === 0) {
      if (expected === batch * batches) break;
      produce(f.program, batch);
    }
  }
  assert.equal(expected, batch * batches);
  assert.equal(f.reader.received, batch * batches);
  assert.equal(f.reader.lost, 0);
  assert.equal(readCounter(f.counters, 0), batch * batches);
  assert.equal(f.reader.available, 0);
});

test("readAvailable delivers every waiting record in one batch, in order", (t) => {
  if (needsKernel(t)) return;
  using f = fixture({ size: 8192, recordSize: 40 });
  let expected = 0;
  for (let round = 0; round < 40; round++) {
    const count = 50 + (round % 7) * 13; // up to 128 records of 48 bytes: fits in 8 KiB
    produce(f.program, count);
    const delivered = f.reader.readAvailable((record) => {
      checkRecord(record, expected, 40);
      expected++;
    });
    assert.equal(delivered, count);
    assert.equal(f.reader.available, 0);
  }
  assert.equal(f.reader.lost, 0);
  assert.equal(readCounter(f.counters, 0), expected);
});

test("readAvailable honours a record limit and leaves the rest for later", (t) => {
  if (needsKernel(t)) return;
  using f = fixture();
  produce(f.program, 10);
  const seen: number[] = [];
  assert.equal(f.reader.readAvailable((r) => seen.push(Number(r.readBigUInt64LE(0))), 4), 4);
  assert.equal(f.reader.readAvailable((r) => seen.push(Number(r.readBigUInt64LE(0)))), 6);
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test("discarded records are skipped", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture({ discardEvery: 3, recordSize: 16 });
  produce(f.program, 30);
  const seen: number[] = [];
  f.reader.readAvailable((record) => seen.push(Number(record.readBigUInt64LE(0))));
  const expected = Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 3 !== 2);
  assert.deepEqual(seen, expected);
  assert.equal(f.reader.available, 0, "discarded records must be consumed too");
});

test("records the program could not reserve are counted: received + lost == produced", (t) => {
  if (needsKernel(t)) return;
  using f = fixture({ size: 4096, recordSize: 64 });
  produce(f.program, 500); // 500 * 72 bytes do not fit in 4 KiB
  let received = 0;
  let previous = -1;
  f.reader.readAvailable((record) => {
    const sequence = Number(record.readBigUInt64LE(0));
    assert.ok(sequence > previous);
    previous = sequence;
    received++;
  });
  const lost = f.reader.lost!;
  assert.ok(lost > 0, "expected failed reservations");
  assert.ok(received > 0);
  assert.equal(received + lost, 500);
});

test("copies stay valid after the iteration moves on; views are the ring's own memory", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture({ recordSize: 32 });
  produce(f.program, 5);
  const copies: Buffer[] = [];
  for await (const record of f.reader.records({ copy: true })) {
    copies.push(record);
    if (copies.length === 5) break;
  }
  produce(f.program, 200); // overwrites the ring area the first records used
  copies.forEach((record, i) => checkRecord(record, i, 32));
  // Breaking out of the loop handed the last record back: a new iteration starts after it.
  let next: Buffer | undefined;
  for await (const record of f.reader.records()) {
    next = Buffer.from(record);
    break;
  }
  checkRecord(next!, 5, 32);
});

test("an AbortSignal ends a waiting iteration promptly", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture();
  const controller = new AbortController();
  let abortedAt = 0;
  setTimeout(() => {
    abortedAt = performance.now();
    controller.abort();
  }, 50);
  let count = 0;
  for await (const record of f.reader.records({ signal: controller.signal })) {
    count += record.length;
  }
  assert.ok(abortedAt > 0, "the iteration ended before the abort");
  const delay = performance.now() - abortedAt;
  assert.equal(count, 0);
  assert.ok(delay < 1000, `iteration ended ${delay} ms after the abort`);
  assert.equal(f.poller.waiting, 0);
});

test("a waiting iteration wakes when events arrive", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture();
  const controller = new AbortController();
  setTimeout(() => produce(f.program, 3), 30);
  const seen: number[] = [];
  for await (const record of f.reader.records({ signal: controller.signal })) {
    seen.push(Number(record.readBigUInt64LE(0)));
    if (seen.length === 3) controller.abort();
  }
  assert.deepEqual(seen, [0, 1, 2]);
});

test("close() ends an iteration and makes the reader unusable", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture();
  setTimeout(() => f.reader.close(), 30);
  for await (const record of f.reader.records()) assert.fail(`unexpected record ${record.length}`);
  assert.equal(f.reader.closed, true);
  assert.throws(() => f.reader.readAvailable(() => undefined), NetbpfError);
  f.reader.close(); // twice is fine
});

test("one consumer at a time", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture();
  const controller = new AbortController();
  const iteration = (async () => {
    for await (const _ of f.reader.records({ signal: controller.signal })) { /* nothing arrives */ }
  })();
  await new Promise((r) => setTimeout(r, 10));
  assert.throws(() => f.reader.readAvailable(() => undefined), UsageError);
  assert.throws(() => f.reader.records(), UsageError);
  controller.abort();
  await iteration;
});

test("an idle reader uses no CPU", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture();
  const controller = new AbortController();
  const iteration = (async () => {
    for await (const _ of f.reader.records({ signal: controller.signal })) { /* idle */ }
  })();
  await new Promise((r) => setTimeout(r, 20));
  const wakeups = f.poller.wakeups;
  const cpu = process.cpuUsage();
  await new Promise((r) => setTimeout(r, 1000));
  const used = process.cpuUsage(cpu);
  controller.abort();
  await iteration;
  assert.equal(f.poller.wakeups, wakeups, "the reader woke up with nothing to read");
  assert.ok(used.user + used.system < 50_000, `idle reader used ${(used.user + used.system) / 1000} ms of CPU in 1 s`);
});

test("bad maps and counters are refused with a clear error", (t) => {
  if (needsKernel(t)) return;
  using array = BpfMap.create({ type: MapType.Array, keySize: 4, valueSize: 8, maxEntries: 1 });
  assert.throws(() => new RingBufferReader(array), (e: unknown) => e instanceof UsageError && /not a Ringbuf map/.test(e.message));
  using ring = BpfMap.create({ type: MapType.Ringbuf, maxEntries: 4096 });
  using wide = BpfMap.create({ type: MapType.Array, keySize: 4, valueSize: 16, maxEntries: 1 });
  assert.throws(() => new RingBufferReader(ring, { lostCounter: { map: wide } }), /4- or 8-byte values/);
  using counter = BpfMap.create({ type: MapType.Array, keySize: 4, valueSize: 8, maxEntries: 1 });
  assert.throws(() => new RingBufferReader(ring, { lostCounter: { map: counter, key: -1 } }), /options\.lostCounter\.key must be an integer from 0 to 4294967295, got -1/);
  assert.throws(() => new RingBufferReader(ring, { lostCounter: 1 as never }), /options\.lostCounter must be an object, got 1/);
  assert.throws(() => new RingBufferReader(ring, { poller: {} as Poller }), /options\.poller must be a Poller/);
  assert.throws(() => new RingBufferReader({ fd: ring.fd, type: MapType.Ringbuf, maxEntries: 3000 }), /map\.maxEntries must be a power of two of at least/);
});

test("readers share the process-wide poller by default", async (t) => {
  if (needsKernel(t)) return;
  using ring = BpfMap.create({ type: MapType.Ringbuf, maxEntries: 4096 });
  using counters = createCounters();
  using program = ringBufferProducer({ ringBuffer: ring, counters, recordSize: 8 });
  using first = new RingBufferReader(ring);
  using other = BpfMap.create({ type: MapType.Ringbuf, maxEntries: 4096 });
  using second = new RingBufferReader(other);
  const controller = new AbortController();
  const idle = (async () => {
    for await (const _ of second.records({ signal: controller.signal })) assert.fail("nothing was produced for this ring");
  })();
  setTimeout(() => produce(program, 2), 20);
  const seen: number[] = [];
  for await (const record of first.records()) {
    seen.push(Number(record.readBigUInt64LE(0)));
    if (seen.length === 2) break;
  }
  assert.deepEqual(seen, [0, 1]);
  assert.equal(Poller.shared().waiting, 1, "only the idle reader still waits");
  controller.abort();
  await idle;
  assert.equal(Poller.shared().waiting, 0);
});

test("in-place reads see the same records without a Buffer per record", (t) => {
  if (needsKernel(t)) return;
  using f = fixture({ recordSize: 24 });
  produce(f.program, 20);
  let expected = 0;
  const count = f.reader.readAvailableInPlace((ring, offset, length, view) => {
    assert.equal(length, 24);
    assert.equal(view.getUint32(offset, true), expected);
    assert.equal(view.byteLength, ring.length);
    checkRecord(ring.subarray(offset, offset + length), expected++, 24);
  });
  assert.equal(count, 20);
  assert.equal(f.reader.received, 20);
});

test("records committed while nobody waited wake the next wait", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture();
  await assert.rejects(f.reader.wait(AbortSignal.timeout(20)));
  produce(f.program, 3);
  await f.reader.wait(AbortSignal.timeout(2000));
  assert.equal(f.reader.readAvailable(() => undefined), 3);
});

test("batches() delivers every record in order across wrap-arounds, skips discarded ones and keeps space until the next batch", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture({ size: 16384, recordSize: 64, discardEvery: 7 });
  const perRound = 100;
  const rounds = 30;
  produce(f.program, perRound);
  let sequence = 0;
  let produced = perRound;
  let batchCount = 0;
  for await (const batch of f.reader.batches({ maximumRecords: 64 })) {
    batchCount++;
    assert.ok(batch.length > 0 && batch.length <= 64);
    // While a batch is held its space is not handed back: the producer's view of free space excludes it.
    assert.ok(f.reader.available >= batch.length * 72);
    for (const record of batch) {
      while (sequence % 7 === 6) sequence++; // discarded by the producer
      checkRecord(record, sequence, 64);
      sequence++;
    }
    if (f.reader.received === Math.floor(produced - produced / 7) || sequence >= produced) {
      if (produced === perRound * rounds) break;
      produce(f.program, perRound);
      produced += perRound;
    }
  }
  assert.equal(produced, perRound * rounds);
  assert.ok(batchCount >= (perRound * rounds) / 64, `${batchCount} batches`);
  assert.equal(f.reader.lost, 0);
  assert.equal(f.reader.available, 0, "leaving the loop hands the last batch's space back");
  // A second iteration may start once the first has ended.
  produce(f.program, 3);
  const controller = new AbortController();
  const seen: number[] = [];
  for await (const batch of f.reader.batches({ signal: controller.signal, copy: true })) {
    seen.push(batch.length);
    controller.abort();
  }
  assert.ok(seen.length === 1 && seen[0]! >= 2);
});

test("rings larger than the view cache deliver through the staging area: every record in order across wrap-arounds, discarded ones skipped, views reused", async (t) => {
  if (needsKernel(t)) return;
  // 4 MiB: above the 2 MiB view cache, so readAvailable and batches() copy each batch out of the ring (1 MiB at a time).
  using f = fixture({ size: 4 * 1024 * 1024, recordSize: 256, discardEvery: 5 });
  const perRound = 10_000; // 2.6 MB of records: more than one staging area per call; 6 rounds go round the ring 3.8 times
  let sequence = 0;
  const nextExpected = (): number => {
    while (sequence % 5 === 4) sequence++; // discarded by the producer
    return sequence++;
  };
  let firstViews: Buffer[] | undefined;
  for (let round = 0; round < 6; round++) {
    produce(f.program, perRound);
    const views: Buffer[] = [];
    let delivered = 0;
    for (;;) {
      const count = f.reader.readAvailable((record) => {
        checkRecord(record, nextExpected(), 256);
        if (views.length < 100) views.push(record);
      }, 3000);
      if (count === 0) break;
      delivered += count;
    }
    assert.equal(delivered, perRound - perRound / 5, `round ${round}`);
    assert.equal(f.reader.available, 0);
    // The same places in the staging area give the same Buffer objects: no Buffer per record once warm.
    if (firstViews === undefined) firstViews = views;
    else assert.ok(views.every((view, index) => view === firstViews![index]), `round ${round}: views were not reused`);
  }
  produce(f.program, perRound);
  let batches = 0;
  for await (const batch of f.reader.batches({ maximumRecords: 2500 })) {
    batches++;
    assert.ok(batch.length > 0 && batch.length <= 2500);
    for (const record of batch) checkRecord(record, nextExpected(), 256);
    if (f.reader.received === 7 * (perRound - perRound / 5)) break;
  }
  assert.equal(f.reader.received, 7 * (perRound - perRound / 5));
  assert.ok(batches >= 4, `${batches} batches`);
  assert.equal(f.reader.available, 0);
  assert.equal(f.reader.lost, 0);
});
