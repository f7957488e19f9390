import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { BpfMap } from "../../src/core/map.js";
import { PerfEventReader, type PerfEventReaderOptions } from "../../src/perf/perf-event-reader.js";
import { MapType } from "../../src/sys/bpf-constants.js";
import { possibleCpuCount } from "../../src/sys/cpus.js";
import { UsageError } from "../../src/sys/errors.js";
import { Poller } from "../../src/sys/poller.js";
import { createCounters, expectedRecord, perfEventProducer, produce, readCounter } from "../support/event-producers.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";

function fixture(recordSize: number, options: PerfEventReaderOptions = {}) {
  const events = BpfMap.create({ type: MapType.PerfEventArray, maxEntries: possibleCpuCount(), name: "nb_perf_test" });
  const counters = createCounters();
  const program = perfEventProducer({ perfEvents: events, counters, recordSize });
  const poller = new Poller();
  const reader = new PerfEventReader(events, { poller, ...options });
  return {
    events, counters, program, reader, poller,
    [Symbol.dispose]() {
      reader.close();
      poller.close();
      program.close();
      counters.close();
      events.close();
    },
  };
}

function needsKernel(t: TestContext): boolean {
  return skipUnlessKernel(t, isRoot(), "needs root for BPF maps, programs and CPU-wide perf events");
}

/** The producer pads nothing itself; the kernel pads raw samples to 8-byte records. */
function paddedLength(recordSize: number): number {
  return Math.ceil((recordSize + 4) / 8) * 8 - 4;
}

function checkSample(data: Buffer, sequence: number, recordSize: number): void {
  assert.equal(data.length, paddedLength(recordSize));
  assert.ok(data.subarray(0, recordSize).equals(expectedRecord(sequence, recordSize)), `sample ${sequence} is wrong: ${data.toString("hex")}`);
}

test("perf events arrive complete and in order per CPU, across wrap-arounds of a one-page ring", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture(24, { pagesPerCpu: 1 }); // 40-byte records: they straddle the ring's end
  const batch = 50;
  const batches = 40;
  const lastByCpu = new Map<number, number>();
  let received = 0;
  produce(f.program, batch);
  for await (const record of f.reader.records()) {
    assert.equal(record.kind, "sample", "nothing may be lost when consumed in time");
    if (record.kind !== "sample") continue;
    const sequence = Number(record.data.readBigUInt64LE(0));
    checkSample(record.data, sequence, 24);
    assert.ok(sequence > (lastByCpu.get(record.cpu) ?? -1), `CPU ${record.cpu}: ${sequence} after ${lastByCpu.get(record.cpu)}`);
    lastByCpu.set(record.cpu, sequence);
    assert.ok(f.reader.cpus.includes(record.cpu));
    received++;
    if (received % batch === 0) {
      if (received === batch * batches) break;
      produce(f.program, batch);
    }
  }
  assert.equal(received, batch * batches);
  assert.equal(f.reader.lost, 0);
  assert.equal(readCounter(f.counters, 1), 0);
});

test("readAvailable delivers each sample once with its content", (t) => {
  if (needsKernel(t)) return;
  using f = fixture(64);
  const seen = new Set<number>();
  for (let round = 0; round < 10; round++) {
    produce(f.program, 100);
    f.reader.readAvailable((record) => {
      assert.equal(record.kind, "sample");
      if (record.kind !== "sample") return;
      const sequence = Number(record.data.readBigUInt64LE(0));
      checkSample(record.data, sequence, 64);
      assert.ok(!seen.has(sequence), `sample ${sequence} delivered twice`);
      seen.add(sequence);
    });
  }
  assert.equal(seen.size, 1000);
  assert.equal(f.reader.received, 1000);
});

test("samples dropped by a full ring are reported: received + lost == produced", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture(32, { pagesPerCpu: 1 });
  const lostRecords: number[] = [];
  let received = 0;
  const consume = (): void => {
    f.reader.readAvailable((record) => {
      if (record.kind === "sample") received++;
      else lostRecords.push(record.count);
    });
  };
  produce(f.program, 1000); // 1000 * 48 bytes into 4 KiB, nothing consumed
  consume();
  // The kernel writes the LOST record with the next sample that fits.
  produce(f.program, 1);
  consume();
  const produced = 1001;
  assert.ok(f.reader.lost > 0, "expected lost samples");
  assert.equal(lostRecords.reduce((a, b) => a + b, 0), f.reader.lost);
  assert.equal(received + f.reader.lost, produced);
  // The program saw the same failures from bpf_perf_event_output.
  assert.equal(readCounter(f.counters, 1), f.reader.lost);
});

test("an AbortSignal ends a waiting iteration promptly; an idle reader does not wake", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture(16);
  const controller = new AbortController();
  let abortedAt = 0;
  setTimeout(() => {
    abortedAt = performance.now();
    controller.abort();
  }, 300);
  const wakeups = f.poller.wakeups;
  for await (const record of f.reader.records({ signal: controller.signal })) assert.fail(`unexpected ${record.kind}`);
  assert.ok(abortedAt > 0, "the iteration ended before the abort");
  const delay = performance.now() - abortedAt;
  assert.ok(delay < 1000, `iteration ended ${delay} ms after the abort`);
  assert.ok(f.poller.wakeups <= wakeups + 1, "the reader woke up with nothing to read");
});

test("a waiting iteration wakes when a sample arrives; copies outlive the iteration", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture(16);
  setTimeout(() => produce(f.program, 2), 30);
  const copies: Buffer[] = [];
  for await (const record of f.reader.records({ copy: true })) {
    if (record.kind === "sample") copies.push(record.data);
    if (copies.length === 2) break;
  }
  produce(f.program, 100);
  f.reader.readAvailable(() => undefined);
  copies.forEach((data, i) => checkSample(data, i, 16));
});

test("bad maps and options are refused with a clear error", (t) => {
  if (needsKernel(t)) return;
  using ring = BpfMap.create({ type: MapType.Ringbuf, maxEntries: 4096 });
  assert.throws(() => new PerfEventReader(ring), (e: unknown) => e instanceof UsageError && /not a PerfEventArray map/.test(e.message));
  using events = BpfMap.create({ type: MapType.PerfEventArray, maxEntries: 1 });
  assert.throws(() => new PerfEventReader(events, { pagesPerCpu: 3 }), /power of two/);
  assert.throws(() => new PerfEventReader(events, { cpus: [1] }), /CPU 1 has no slot/);
  assert.throws(() => new PerfEventReader(events, { cpus: [-1] }), /options\.cpus\[0\] must be an integer ≥ 0, got -1/);
  assert.throws(() => new PerfEventReader(events, { wakeupEvents: 0 }), /options\.wakeupEvents must be an integer from 1 to 4294967295, got 0/);
  assert.throws(() => new PerfEventReader(events, { poller: {} as Poller }), /options\.poller must be a Poller/);
  assert.throws(() => new PerfEventReader({ fd: 3, type: MapType.PerfEventArray, maxEntries: 1 } as never), /map\.fd must be a FileDescriptor/);
});

test("wakeupBytes holds the wakeup back until that much data waits", async (t) => {
  // (A wait that starts while data is already there resolves at once.)
  if (needsKernel(t)) return;
  using f = fixture(16, { wakeupBytes: 2048, pagesPerCpu: 2 });
  let woke = false;
  const waiting = f.reader.wait(AbortSignal.timeout(5000)).then(() => { woke = true; });
  produce(f.program, 1); // one 32-byte record: below the watermark
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(woke, false, "woken below the watermark");
  produce(f.program, 100); // 3.2 KB: above it
  await waiting;
  let samples = 0;
  f.reader.readAvailable((record) => { if (record.kind === "sample") samples++; });
  assert.equal(samples, 101);
});

test("a wakeup that came while nobody waited is not lost", async (t) => {
  if (needsKernel(t)) return;
  using f = fixture(16);
  // Arm, give up, then let samples arrive while the fd is armed but nobody waits:
  // re-arming polls the perf fd, which clears its readiness.
  await assert.rejects(f.reader.wait(AbortSignal.timeout(20)));
  produce(f.program, 3);
  await f.reader.wait(AbortSignal.timeout(2000));
  let samples = 0;
  f.reader.readAvailable((record) => { if (record.kind === "sample") samples++; });
  assert.equal(samples, 3);
});
