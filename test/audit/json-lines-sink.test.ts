import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { stdoutAlertOutput } from "../../src/audit/alert-outputs.js";
import { formatRecordJson, JsonLinesSink } from "../../src/audit/json-lines-sink.js";
import { UsageError } from "../../src/sys/errors.js";
import { dnsRecord, record } from "./record-builders.js";

test("records are appended to a file as JSON lines with the record's field names", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "netbpf-jsonl-"));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  const path = join(directory, "audit.jsonl");
  const records = [record({ sequence: 1 }), dnsRecord("example.org", ["192.0.2.1"], { sequence: 2 })];
  for (const item of records) {
    const sink = new JsonLinesSink({ path });
    sink.write([item]);
    await sink.close();
  }
  const lines = readFileSync(path, "utf8").split("\n");
  assert.equal(lines.pop(), "", "ends with a newline");
  assert.equal(lines.length, 2, "the second sink appended");
  const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(Object.keys(parsed[0]!), Object.keys(records[0]!));
  assert.equal(parsed[0]!.start, records[0]!.start.toISOString());
  assert.deepEqual(parsed[1]!.dns, records[1]!.dns);
  assert.deepEqual(JSON.parse(lines[0]!), JSON.parse(JSON.stringify(records[0])));
});

test("kinds select records; a stream that falls behind drops and counts instead of waiting", async () => {
  const stream = new PassThrough({ highWaterMark: 16 });
  const sink = new JsonLinesSink({ stream, kinds: ["dns"], maximumBufferedBytes: 1000 });
  sink.write([record(), dnsRecord("a.example", [])]);
  assert.equal(sink.statistics().written, 1);
  // Nobody reads the stream: past 1000 buffered bytes, records are dropped.
  for (let i = 0; i < 20; i++) sink.write([dnsRecord(`n${i}.example`, [])]);
  const { written, dropped } = sink.statistics();
  assert.ok(dropped > 0 && written + dropped === 21, JSON.stringify(sink.statistics()));
  const text = stream.read()?.toString() ?? "";
  assert.equal(text.trim().split("\n").length, written);
});

test("an unwritable path is a usage error at start", () => {
  assert.throws(() => new JsonLinesSink({ path: "/proc/no-such-dir/audit.jsonl" }), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.match(error.message, /^open JSON lines output: cannot write \/proc\/no-such-dir\/audit\.jsonl: ENOENT/);
    return true;
  });
});

test("a JSON lines sink refuses bad options, naming the option", () => {
  const cases: [() => unknown, RegExp][] = [
    [() => new JsonLinesSink({ stream: {} as never }), /^open JSON lines output: options\.stream must be a writable stream, got an object \(Object\)$/],
    [() => new JsonLinesSink({ stream: new PassThrough(), kinds: "alert" as never }), /options\.kinds must be an array, got "alert"/],
    [() => new JsonLinesSink({ stream: new PassThrough(), maximumBufferedBytes: -1 }), /options\.maximumBufferedBytes must be an integer ≥ 0, got -1/],
    [() => new JsonLinesSink({ path: 42 as never }), /options\.path must be a string, got 42/],
    [() => formatRecordJson({ kind: "connection" } as never), /^format record JSON: record\.start must be a valid Date, got undefined$/],
    [() => stdoutAlertOutput({} as never), /^stdout alert output: stream must be a writable stream/],
  ];
  for (const [call, pattern] of cases) assert.throws(call, (error: unknown) => error instanceof UsageError && pattern.test(error.message), pattern.source);
});
