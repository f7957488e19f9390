/**
 * Every public method (with parameters) of an instance of every root class
 * refuses nonsense arguments (issue #13 item 6): called with `()`,
 * `(undefined)`, `(42)`, `("x")` or `({})` it throws a NetbpfError whose
 * message names the bad parameter, unless the call is valid (the `accepted`
 * lists in test/support/instance-factories/, with the reason).
 *
 * The calls run in a child process (test/support/instance-probe.ts) in an
 * empty network namespace with a private bpffs: a missing check can act only
 * on the probe's own objects there.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { acceptedInstanceCalls, instanceFactories } from "./support/instance-factories/index.js";
import type { InstanceReport } from "./support/instance-probe.js";
import { assertWrongCallsRefused } from "./support/wrong-calls.js";
import { skipUnlessRoot } from "./support/kernel.js";

/**
 * NOT DONE YET: methods that, for some wrong call, still throw something
 * other than a NetbpfError naming the argument, or return silently. An entry
 * that starts passing fails this test, so the list only shrinks.
 */
const notYetChecked = new Set<string>([
]);

/**
 * NOT DONE YET: root classes with public methods that take arguments and no
 * factory yet. An entry that gets a factory fails this test until removed.
 */
const notYetMade = new Set<string>([
  // code
  // kernel
  // capture
  // audit
  // control
]);

let probed: InstanceReport | undefined;

function probe(): InstanceReport {
  if (probed !== undefined) return probed;
  const work = mkdtempSync(join(tmpdir(), "nb-instances-"));
  try {
    const script = resolve("dist", "test", "support", "instance-probe.js");
    const result = spawnSync("unshare", ["--net", "--mount", "--propagation", "private", "sh", "-c",
      'ip link set lo up && mount -t bpf bpf /sys/fs/bpf && exec "$0" "$1"', process.execPath, script], {
      cwd: work, encoding: "utf8", timeout: 900_000, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024,
    });
    assert.equal(result.status, 0, `the probe failed (signal ${result.signal}): ${result.stderr.slice(-2000)}`);
    probed = JSON.parse(result.stdout) as InstanceReport;
    return probed;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

test("every root class with methods that take arguments has a factory that makes an instance", (t) => {
  if (skipUnlessRoot(t, "to make kernel objects in an empty network namespace")) return;
  const report = probe();
  assert.deepEqual(report.withoutFactory.filter((name) => !notYetMade.has(name)), [], "these classes have no factory in test/support/instance-factories/");
  assert.deepEqual([...notYetMade].filter((name) => !report.withoutFactory.includes(name)), [], "these have a factory now: remove them from notYetMade");
  assert.deepEqual(report.factoryFailures, {}, "these factories failed");
});

test("every public instance method refuses nonsense arguments with a NetbpfError naming the argument", (t) => {
  if (skipUnlessRoot(t, "to make kernel objects in an empty network namespace")) return;
  const checkedCalls = assertWrongCallsRefused(probe().methods, acceptedInstanceCalls, notYetChecked, "methods");
  // A floor that rises as checks land.
  assert.ok(checkedCalls >= 1126, `only ${checkedCalls} wrong calls were refused properly`);
});

test("every accepted entry names a probed method and every factory a root class", (t) => {
  if (skipUnlessRoot(t, "to make kernel objects in an empty network namespace")) return;
  const called = new Set(probe().methods.map((entry) => entry.name));
  assert.ok(called.size >= 257, `only ${called.size} methods were probed`);
  assert.deepEqual([...Object.keys(acceptedInstanceCalls), ...notYetChecked].filter((name) => !called.has(name)), []);
  const classes = new Set([...called].map((name) => name.split("#")[0]!));
  assert.deepEqual(Object.keys(instanceFactories).filter((name) => !classes.has(name)), []);
});
