import assert from "node:assert/strict";
import { readlinkSync } from "node:fs";
import { test } from "node:test";
import { ProcessDetails } from "../../src/audit/process-details.js";

test("process details: /proc is read once per process, and again after an exec (other command) or for a reused pid (other parent)", () => {
  const details = new ProcessDetails();
  const kernel = { pid: process.pid, command: "node", parentPid: process.ppid, uid: 0, cgroupId: "1" };
  const first = details.describe(kernel);
  assert.equal(details.reads, 1);
  assert.equal(first?.executable, readlinkSync("/proc/self/exe"));
  assert.equal(first?.parentPid, process.ppid);
  details.describe(kernel);
  details.describe({ ...kernel, command: null, parentPid: null });
  assert.equal(details.reads, 1, "cached while the kernel names the same process");
  details.describe({ ...kernel, command: "exec-ed" });
  assert.equal(details.reads, 2, "another command: an exec");
  details.describe({ ...kernel, command: "exec-ed" });
  assert.equal(details.reads, 2);
  const reused = details.describe({ ...kernel, parentPid: process.ppid + 1 });
  assert.equal(details.reads, 3, "another parent: a reused pid");
  assert.equal(reused?.parentPid, process.ppid + 1, "the kernel's parent wins");
  assert.equal(details.describe({ pid: null, command: null }), null);
});
