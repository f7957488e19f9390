/**
 * JavaScript side of bench/ringbuf-throughput: consumes a pinned ring buffer
 * with RingBufferReader and checks records exactly as the C consumer does.
 *
 * usage: node ringbuf-consumer-child.js <batch|in-place|iterator> <ring pin> <counters pin> <events expected>
 */
import { BpfMap } from "../src/core/map.js";
import { RingBufferReader } from "../src/ringbuf/ring-buffer-reader.js";

const [mode, ringPath, countersPath, expectedText] = process.argv.slice(2);
if (!mode || !ringPath || !countersPath || !expectedText) {
  console.error("usage: ringbuf-consumer-child <batch|in-place|iterator> <ring pin> <counters pin> <events expected>");
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
let first = 0n;
let last = 0n;

function check(record: Buffer): void {
  checkAt(record, 0);
}

function checkAt(ring: Buffer, offset: number): void {
  if (first === 0n) first = process.hrtime.bigint();
  const sequence = ring.readUInt32LE(offset) + ring.readUInt32LE(offset + 4) * 0x1_0000_0000;
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
      if (received >= expected) break;
      continue;
    }
    if (finished()) break;
    // The timeout only serves to notice that the producer has stopped (all remaining events lost).
    await reader.wait(AbortSignal.timeout(100)).catch(() => undefined);
  }
} else {
  const controller = new AbortController();
  // Only notices that the producer has stopped (all remaining events lost).
  const watchdog = setInterval(() => finished() && controller.abort(), 100);
  for await (const record of reader.records({ signal: controller.signal })) {
    check(record);
    last = process.hrtime.bigint();
    if (received >= expected) break;
  }
  clearInterval(watchdog);
}
const lost = reader.lost!;
console.log(JSON.stringify({ received, gaps, disorder, lost, elapsedNs: Number(last - first) }));
reader.close();
