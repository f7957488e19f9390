/**
 * Child of bench/ringbuf-idle-memory: holds an idle ring buffer reader (or,
 * with "bare", only loads netbpf) and reports "ready" on stdout.
 */
import { BpfMap } from "../../src/core/map.js";
import { RingBufferReader } from "../../src/ringbuf/ring-buffer-reader.js";
import { MapType } from "../../src/sys/bpf-constants.js";
import { createCounters, produce, ringBufferProducer } from "../../test/support/event-producers.js";

const mode = process.argv[2] ?? "reader";
const ringSize = Number(process.argv[3] ?? 1 << 20);
if (mode === "bare") {
  console.log("ready");
  setInterval(() => undefined, 1 << 30);
} else {
  const ring = BpfMap.create({ type: MapType.Ringbuf, maxEntries: ringSize, name: "nb_rb_idle" });
  const counters = createCounters();
  const program = ringBufferProducer({ ringBuffer: ring, counters, recordSize: 64 });
  const reader = new RingBufferReader(ring, { lostCounter: { map: counters, key: 1 } });
  // Push twice the ring's size through it first, so every page of the ring has been touched.
  const perRound = Math.floor(ringSize / 72 / 2);
  for (let round = 0; round < 4; round++) {
    produce(program, perRound);
    reader.readAvailable(() => undefined);
  }
  let received = 0;
  const iteration = (async () => {
    for await (const record of reader.records()) received += record.length;
  })();
  console.log("ready");
  process.on("SIGTERM", () => {
    reader.close();
    void iteration.then(() => process.exit(received === 0 ? 0 : 1));
  });
}
