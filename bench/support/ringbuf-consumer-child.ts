/**
 * JavaScript side of bench/ringbuf-throughput: consumes a pinned ring buffer
 * with RingBufferReader and checks records exactly as the C consumer does.
 *
 * usage: node ringbuf-consumer-child.js <batch|in-place|iterator|batches> <ring pin> <counters pin> <events expected>
 */
import { BpfMap } from "../../src/core/map.js";
import { RingBufferReader } from "../../src/ringbuf/ring-buffer-reader.js";

const [mode, ringPath, countersPath, expectedText] = process.argv.slice(2);
if (!mode || !ringPath || !countersPath || !expectedText) {
  console.error("usage: ringbuf-consumer-child <batch|in-place|iterator|batches> <ring pin> <counters pin> <events expected>");
  process.exit(2);
}
const expected = Number(expectedText);
const ring = BpfMap.openPinned(ringPath);
const counters = BpfMap.openPinned(countersPath);
const reader = new RingBufferReader(ring, { lostCounter: { map: counters, key: 1 } });

let received = 0;
let next = 0;
let gaps = 0;
let disorder = 0;
let started = false;
let first = 0n;
let last = 0n;
// CPU time (all threads of this process): unlike wall time, not inflated when other processes share the CPUs.
let firstCpu = 0;
let lastCpu = 0;
const cpuNow = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) * 1000;
};

function check(record: Buffer): void {
  if (!started) {
    started = true;
    first = process.hrtime.bigint();
    firstCpu = cpuNow();
  }
  count(record.readUInt32LE(0) + record.readUInt32LE(4) * 0x1_0000_0000);
}

function checkAt(_ring: Buffer, offset: number, _length: number, view: DataView): void {
  if (!started) {
    started = true;
    first = process.hrtime.bigint();
    firstCpu = cpuNow();
  }
  count(view.getUint32(offset, true) + view.getUint32(offset + 4, true) * 0x1_0000_0000);
}

function count(sequence: number): void {
  if (sequence < next) disorder++;
  else {
    gaps += sequence - next;
    next = sequence + 1;
  }
  received++;
}

function finished(): boolean {
  return received >= expected || received + reader.lost! >= expected;
}

console.log("ready");
if (mode === "batch" || mode === "in-place") {
  for (;;) {
    const count = mode === "batch" ? reader.readAvailable(check) : reader.readAvailableInPlace(checkAt);
    if (count > 0) {
      last = process.hrtime.bigint();
      lastCpu = cpuNow();
      if (received >= expected) break;
      continue;
    }
    if (finished()) break;
    // The timeout only serves to notice that the producer has stopped (all remaining events lost).
    await reader.wait(AbortSignal.timeout(100)).catch(() => undefined);
  }
} else if (mode === "batches") {
  const controller = new AbortController();
  const watchdog = setInterval(() => finished() && controller.abort(), 100);
  outer: for await (const batch of reader.batches({ signal: controller.signal })) {
    for (const record of batch) check(record);
    last = process.hrtime.bigint();
    if (received >= expected) break outer;
  }
  lastCpu = cpuNow();
  clearInterval(watchdog);
} else {
  const controller = new AbortController();
  // Only notices that the producer has stopped (all remaining events lost).
  const watchdog = setInterval(() => finished() && controller.abort(), 100);
  for await (const record of reader.records({ signal: controller.signal })) {
    check(record);
    // The clock every 1,024 records and at the end, not per record: reading it costs as much as a record.
    if ((received & 1023) === 0 || received >= expected) last = process.hrtime.bigint();
    if (received >= expected) break;
  }
  lastCpu = cpuNow();
  clearInterval(watchdog);
}
const lost = reader.lost!;
console.log(JSON.stringify({ received, gaps, disorder, lost, elapsedNs: Number(last - first), cpuNs: lastCpu - firstCpu }));
reader.close();
