import { test } from "node:test";
import assert from "node:assert/strict";
import { probeAll, probeHelper, probeMapType, probeProgramType } from "../../src/features/features.js";
import { MapType, ProgramType } from "../../src/sys/bpf-constants.js";

test("probes report what the kernel really accepts", () => {
  // Socket filters and hash maps exist on every kernel with BPF.
  assert.equal(probeProgramType(ProgramType.SocketFilter), true);
  assert.equal(probeMapType(MapType.Hash), true);
  // A type number past the kernel's list is refused.
  assert.equal(probeProgramType(200 as ProgramType), false);
  assert.equal(probeMapType(200 as MapType), false);
  // Helper availability depends on the program type: skb_load_bytes (26) is for skb programs only.
  assert.equal(probeHelper(ProgramType.SchedCls, 26), true);
  assert.equal(probeHelper(ProgramType.Tracepoint, 26), false);
  // A helper number nobody has defined.
  assert.equal(probeHelper(ProgramType.SocketFilter, 100000), false);
});

test("probeAll answers for every program and map type and the attach kinds", () => {
  const report = probeAll();
  assert.ok(Object.keys(report.programTypes).length >= 30);
  assert.ok(Object.keys(report.mapTypes).length >= 30);
  assert.equal(report.mapTypes.Ringbuf, true);
  assert.equal(typeof report.attach.tcx, "boolean");
  assert.match(report.instructionSet, /^v[1-4]$/);
});
