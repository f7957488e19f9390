import { test } from "node:test";
import assert from "node:assert/strict";
import { FeatureProbeError, probeAll, probeHelper, probeMapType, probeMayGoto, probeProgramType, probeSupport } from "../../src/features/features.js";
import { Assembler, R0, R2 } from "../../src/asm/assembler.js";
import { Program } from "../../src/core/program.js";
import { hasCapability, SyscallError, VerifierError } from "../../src/sys/errors.js";
import { MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { skipUnlessRoot } from "../support/kernel.js";

test("probes report what the kernel really accepts", (t) => {
  if (skipUnlessRoot(t, "for the kernel to answer probes")) return;
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

test("probeAll answers for every program and map type and the attach kinds", (t) => {
  if (skipUnlessRoot(t, "for the kernel to answer probes")) return;
  const report = probeAll();
  assert.ok(Object.keys(report.programTypes).length >= 30);
  assert.ok(Object.keys(report.mapTypes).length >= 30);
  assert.equal(report.mapTypes.Ringbuf, "yes");
  assert.equal(report.programTypes.SocketFilter, "yes");
  assert.match(report.instructionSet, /^v[1-4]$/);
  assert.equal(report.mayGoto, "yes", "Linux 6.9 and later know may_goto");
  assert.equal(report.kernelBtf, "yes");
  const places: [string, string][] = [
    ...Object.entries(report.programTypes).map(([k, v]): [string, string] => [`programTypes.${k}`, v]),
    ...Object.entries(report.mapTypes).map(([k, v]): [string, string] => [`mapTypes.${k}`, v]),
    ...Object.entries(report.attach).map(([k, v]): [string, string] => [`attach.${k}`, v]),
    ...Object.entries(report.helpers).flatMap(([t, row]) => Object.entries(row).map(([k, v]): [string, string] => [`helpers.${t}.${k}`, v])),
  ];
  for (const [place, value] of places) {
    assert.ok(["yes", "no", "unknown"].includes(value), `${place}: ${value}`);
    // Every unknown answer has its reason, and only unknown answers have one.
    assert.equal(value === "unknown", report.unknown[place] !== undefined, place);
  }
  for (const place of Object.keys(report.unknown)) assert.ok(place === "instructionSet" || places.some(([p]) => p === place), place);
});

test("a probe answers yes, no, or unknown with the reason — never an exception", (t) => {
  if (skipUnlessRoot(t, "for the kernel to answer probes")) return;
  assert.deepEqual(probeSupport(() => probeMapType(MapType.Hash)), { support: "yes" });
  assert.deepEqual(probeSupport(() => probeMapType(200 as MapType)), { support: "no" });
  // An answer the probe cannot read (EPERM to a root that holds CAP_BPF) is unknown, with its reason.
  const odd = probeSupport(() => {
    throw new FeatureProbeError("map type Example", new SyscallError("map create", 1));
  });
  assert.equal(odd.support, "unknown");
  assert.match(odd.reason!, /^probe map type Example: .*map create: failed with EPERM/);
  // Programming errors are not answers.
  assert.throws(() => probeSupport(() => { throw new TypeError("bug"); }), TypeError);
});

test("the arena map probe never throws, and never tells a privileged process to run as root", () => {
  // On some kernels creating an arena map returns EPERM even to root (without CAP_SYS_RESOURCE).
  const result = probeSupport(() => probeMapType(MapType.Arena));
  assert.ok(["yes", "no", "unknown"].includes(result.support));
  if (result.support === "unknown") {
    assert.match(result.reason!, /map type Arena/);
    if (hasCapability("CAP_BPF")) assert.doesNotMatch(result.reason!, /run as root/);
  }
  // Asking again gives the same, cached answer, as an exception from the boolean form.
  if (result.support === "unknown") assert.throws(() => probeMapType(MapType.Arena), FeatureProbeError);
  else assert.equal(probeMapType(MapType.Arena), result.support === "yes");
});

test("may_goto: probed, and a program using it that the verifier refuses for another reason keeps its verifier error", () => {
  // This project's kernels are 6.9 or later, so the probe says yes; on an older kernel Program.load turns the
  // verifier's refusal of a may_goto (a live protochain filter) into an UnsupportedFeatureError naming it.
  assert.equal(probeMayGoto(), true);
  Program.load({ type: ProgramType.SocketFilter, instructions: new Assembler().mayGoto("done").label("done").return(0).finish() }).close();
  // r2 is never written: refused for that, and the error stays the verifier's.
  const uninitialised = new Assembler().mayGoto("done").label("done").mov64(R0, R2).exit().finish();
  assert.throws(() => Program.load({ type: ProgramType.SocketFilter, instructions: uninitialised }), VerifierError);
});

test("probes refuse what is not a type number or a probe, before asking the kernel", () => {
  assert.throws(() => probeMapType("hash" as never), /type must be an integer from 0 to 4294967295, got "hash"/);
  assert.throws(() => probeProgramType(-1 as ProgramType), /type must be an integer from 0 to 4294967295, got -1/);
  assert.throws(() => probeHelper(ProgramType.SchedCls, 0), /helper must be an integer from 1 to 2147483647, got 0/);
  assert.throws(() => probeSupport(true as never), /probe must be a function, got true/);
});
