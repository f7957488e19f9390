/**
 * Producer of bench/ringbuf-throughput: runs the pinned producer program
 * with BPF_PROG_TEST_RUN (one event per run) until `total` events are made.
 *
 * usage: node ringbuf-producer-child.js <program pin> <total> <runs per call>
 */
import { Program } from "../../src/core/program.js";
import { testPacket } from "../../test/support/event-producers.js";

const [programPath, totalText, chunkText] = process.argv.slice(2);
const total = Number(totalText);
const chunk = Number(chunkText ?? 1_000_000);
const program = Program.openPinned(programPath!);
const started = process.hrtime.bigint();
for (let done = 0; done < total; done += chunk) {
  program.run({ data: testPacket, repeat: Math.min(chunk, total - done) });
}
const elapsedNs = Number(process.hrtime.bigint() - started);
console.log(JSON.stringify({ produced: total, elapsedNs }));
program.close();
