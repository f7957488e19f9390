import { test } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { TrafficHistory, type TrafficRates4 } from "../../src/server/traffic-history.js";

const rates = (value: number): TrafficRates4 => [value, value / 2, value / 100, value / 200];

test("the history keeps the last `capacity` samples, oldest first, and answers since(time)", () => {
  const history = new TrafficHistory({ capacity: 5 });
  assert.deepEqual(history.since(), []);
  assert.equal(history.latest(), undefined);
  for (let second = 1; second <= 12; second++) history.record(second * 1000, new Map([["eth0", rates(second)]]), new Map([["tcp/443", rates(second)]]));
  assert.equal(history.length, 5);
  assert.deepEqual(history.since().map((sample) => sample.time), [8000, 9000, 10000, 11000, 12000]);
  assert.deepEqual(history.since(10000).map((sample) => sample.time), [11000, 12000]);
  assert.deepEqual(history.since(99999), []);
  assert.deepEqual(history.latest()?.interfaces.eth0, rates(12));
  assert.throws(() => history.record(11500, new Map(), new Map()), /before the last one/);
  assert.throws(() => history.record(Number.NaN, new Map(), new Map()), /milliseconds/);
});

test("each sample keeps the busiest ports and interfaces and sums the rest as other", () => {
  const history = new TrafficHistory({ capacity: 3, topPorts: 2, maximumInterfaces: 1 });
  const ports = new Map<string, TrafficRates4>([["tcp/22", rates(10)], ["tcp/443", rates(1000)], ["udp/53", rates(100)], ["tcp/80", rates(1)]]);
  const sample = history.record(1, new Map([["lo", rates(5)], ["eth0", rates(50)]]), ports);
  assert.deepEqual(Object.keys(sample.ports).sort(), ["other", "tcp/443", "udp/53"]);
  assert.deepEqual(sample.ports.other, [11, 5.5, 0.11, 0.055]);
  assert.deepEqual(Object.keys(sample.interfaces).sort(), ["eth0", "other"]);
  // The caller's arrays are copied: changing them later does not change the history.
  ports.get("tcp/443")![0] = 0;
  assert.equal(history.latest()!.ports["tcp/443"]![0], 1000);
});

test("the history's memory is bounded: a full hour of samples with many ports each stays a few MiB", (t) => {
  const history = new TrafficHistory();
  assert.equal(history.capacity, 3600);
  setFlagsFromString("--expose-gc");
  const collect = runInNewContext("gc") as () => void;
  collect();
  const before = process.memoryUsage().heapUsed;
  for (let second = 0; second < 3 * 3600; second++) {
    const ports = new Map<string, TrafficRates4>();
    for (let port = 0; port < 500; port++) ports.set(`tcp/${(second * 7 + port) % 65536}`, rates(port + 1));
    history.record(second * 1000, new Map([["eth0", rates(second)]]), ports);
  }
  assert.equal(history.length, 3600);
  assert.equal(history.since().length, 3600);
  for (const sample of history.since()) assert.ok(Object.keys(sample.ports).length <= history.topPorts + 1);
  collect();
  const grown = process.memoryUsage().heapUsed - before;
  t.diagnostic(`an hour of history: ${(grown / 1048576).toFixed(1)} MiB`);
  assert.ok(grown < 16 * 1024 * 1024, `heap grew ${grown} bytes`);
});

test("bad options are refused", () => {
  assert.throws(() => new TrafficHistory({ capacity: 0 }), /capacity must be an integer/);
  assert.throws(() => new TrafficHistory({ capacity: 1.5 }), /capacity must be an integer/);
  assert.throws(() => new TrafficHistory({ topPorts: -1 }), /topPorts/);
  assert.throws(() => new TrafficHistory({ maximumInterfaces: 1001 }), /traffic history: options\.maximumInterfaces must be an integer from 1 to 1000, got 1001/);
  assert.throws(() => new TrafficHistory("an hour" as never), /traffic history: options must be an object, got "an hour"/);
  assert.throws(() => new TrafficHistory().record("now" as never, new Map(), new Map()), /traffic history: time must be a number of milliseconds, got "now"/);
});
