import { test } from "node:test";
import assert from "node:assert/strict";
import { perfEventAttribute, perfEventOpen, PerfSoftwareEvent, PerfType, tracepointId } from "../../src/sys/perf-event.js";
import { UsageError } from "../../src/sys/errors.js";

const usage = (pattern: RegExp) => (error: unknown) => error instanceof UsageError && pattern.test((error as Error).message);

test("perfEventAttribute encodes numbers and bigints alike, and refuses fields out of range", () => {
  const fromNumbers = perfEventAttribute({ type: PerfType.Software, config: PerfSoftwareEvent.BpfOutput, samplePeriod: 1, wakeupEvents: 1 });
  const fromBigints = perfEventAttribute({ type: PerfType.Software, config: BigInt(PerfSoftwareEvent.BpfOutput), samplePeriod: 1n, wakeupEvents: 1 });
  assert.deepEqual(fromNumbers, fromBigints);
  assert.equal(perfEventAttribute({ type: 0, config: (1n << 64n) - 1n }).readBigUInt64LE(8), (1n << 64n) - 1n);
  assert.throws(() => perfEventAttribute({ type: 0, config: 1n << 64n }), usage(/attributes\.config must be an integer \(number or bigint\) from 0 to 2\^64 - 1/));
  assert.throws(() => perfEventAttribute({ type: -1, config: 0 }), usage(/attributes\.type must be an integer from 0 to 4294967295, got -1/));
  assert.throws(() => perfEventAttribute({ type: 1, config: 0, samplePeriod: 1.5 }), usage(/attributes\.samplePeriod must be/));
  assert.throws(() => perfEventAttribute({ type: 1, config: 0, disabled: 1 as never }), usage(/attributes\.disabled must be true or false/));
});

test("perfEventOpen checks its options before the system call", () => {
  const attributes = { type: PerfType.Software, config: PerfSoftwareEvent.Dummy };
  assert.throws(() => perfEventOpen(attributes, { pid: -1, cpu: -1 }), usage(/options\.pid and options\.cpu cannot both be -1/));
  assert.throws(() => perfEventOpen(attributes, { cpu: -2 }), usage(/options\.cpu must be an integer from -1 to 2147483647, got -2/));
  assert.throws(() => perfEventOpen(attributes, { hint: "EPERM" as never }), usage(/options\.hint must be a function/));
  assert.throws(() => tracepointId("sock", 42 as never), usage(/name must be a string, got 42/));
});
