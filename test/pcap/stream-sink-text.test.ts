import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough, Writable } from "node:stream";
import { StreamSink } from "../../src/pcap/capture-sink.js";

test("stream sink text: lines reach the stream whole and in order, across its buffer, with long lines and multi-byte characters", async () => {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  const output = new StreamSink(stream, { bufferSize: 256 });
  const expected: string[] = [];
  for (let i = 0; i < 500; i++) {
    const line = i % 97 === 0 ? `long ${"x".repeat(1000 + i)}` : i % 13 === 0 ? `é→ ${i} ✓` : `line ${i}`;
    expected.push(line);
    if (i % 2 === 0) output.writeLine(line);
    else {
      output.writeText(line.slice(0, 3));
      output.writeLine(line.slice(3));
    }
    if (i % 50 === 0) await output.flush();
  }
  assert.ok(output.pending > 0, "bytes wait for the next flush");
  await output.flush();
  assert.equal(output.pending, 0);
  assert.equal(Buffer.concat(chunks).toString("utf8"), expected.map((line) => `${line}\n`).join(""));
  // A stream that keeps the chunks (the PassThrough above) never sees them overwritten.
  assert.ok(chunks.length > 10);
});

test("stream sink text: a stream that holds a chunk until later gets a new buffer for the next lines", async () => {
  const held: Buffer[] = [];
  const callbacks: (() => void)[] = [];
  const slow = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _encoding, callback) {
      held.push(chunk);
      callbacks.push(callback);
    },
  });
  const output = new StreamSink(slow, { bufferSize: 64 });
  output.writeLine("a".repeat(40));
  output.writeLine("b".repeat(40));
  output.writeLine("c".repeat(40));
  const flushed = output.flush();
  // Completed only now: each chunk stayed with the stream while the next lines were written.
  while (callbacks.length > 0) callbacks.shift()!();
  await flushed;
  const text = Buffer.concat(held).toString();
  assert.equal(text, `${"a".repeat(40)}\n${"b".repeat(40)}\n${"c".repeat(40)}\n`);
});
