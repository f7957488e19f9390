import { test } from "node:test";
import assert from "node:assert/strict";
import { BpfMap } from "../../src/core/map.js";
import { u32, u64 } from "../../src/core/codec.js";
import { Program } from "../../src/core/program.js";
import { AttachType, MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { programQuery } from "../../src/sys/bpf.js";
import { UsageError } from "../../src/sys/errors.js";
import { Link } from "../../src/link/link.js";
import { attachTcx } from "../../src/link/tcx.js";
import { attachXdp } from "../../src/link/xdp.js";
import { countingProgram, loadPacketByte, loadPacketHalf, movRegister } from "../support/bytecode.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { Testbed, udpSenderScript } from "../support/testbed.js";

const port = 4790;

function counterMap(): BpfMap<number, bigint> {
  return BpfMap.create({ type: MapType.Array, key: u32, value: u64, maxEntries: 1 });
}

function udpCounter(map: BpfMap<number, bigint>, name: string): Program {
  const instructions = countingProgram(map.fd.value, [
    { load: [loadPacketHalf(12)], register: 0, equals: 0x0800 },
    { load: [loadPacketByte(23)], register: 0, equals: 17 },
    { load: [loadPacketHalf(36)], register: 0, equals: port },
  ], 0, { prologue: [movRegister(6, 1)] });
  return Program.load({ name, type: ProgramType.SchedCls, instructions });
}

test("update swaps the program of a live link; detach stops it while the object stays open", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and tc")) return;
  const bed = Testbed.create();
  t.after(() => bed.destroy());
  using mapA = counterMap();
  using mapB = counterMap();
  using programA = udpCounter(mapA, "count_a");
  using programB = udpCounter(mapB, "count_b");
  using link = bed.inNamespace(bed.b, () => attachTcx(programA, { interface: bed.b.interface, direction: "ingress" }));
  const send = (count: number) => bed.node(bed.a, udpSenderScript(bed.b.address, port, count));
  send(2);
  link.update(programB);
  assert.equal(link.info().programId, programB.info().id);
  send(3);
  assert.deepEqual([mapA.get(0), mapB.get(0)], [2n, 3n]);
  // A second descriptor (by id) closes without detaching.
  Link.fromId(link.id).close();
  send(1);
  assert.equal(mapB.get(0), 4n);
  link.detach();
  assert.equal(link.closed, false);
  send(2);
  assert.equal(mapB.get(0), 4n, "nothing runs after detach");
  assert.deepEqual(bed.inNamespace(bed.b, () => programQuery(link.interfaceIndex, AttachType.TcxIngress).programIds), []);
  link.close();
  link.close();
  assert.equal(link.closed, true);
  assert.throws(() => link.info(), (e: Error) => e instanceof UsageError && /is closed/.test(e.message));
  assert.throws(() => link.unpin(), UsageError);
});

test("tcx ordering by program id, and bad anchors are refused", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and tc")) return;
  const bed = Testbed.create();
  t.after(() => bed.destroy());
  using map = counterMap();
  using first = udpCounter(map, "first");
  using second = udpCounter(map, "second");
  bed.inNamespace(bed.a, () => {
    using one = attachTcx(first, { interface: bed.a.interface, direction: "ingress" });
    using two = attachTcx(second, { interface: bed.a.interface, direction: "ingress", after: { programId: first.info().id } });
    assert.deepEqual(programQuery(one.interfaceIndex, AttachType.TcxIngress).programIds, [first.info().id, second.info().id]);
    assert.equal(two.mechanism, "tcx");
    assert.throws(() => attachTcx(second, { interface: bed.a.interface, direction: "ingress", before: 12345 as unknown as "all" }), /before\/after must be/);
    assert.throws(() => attachTcx(second, { interface: bed.a.interface, direction: "ingress", before: "all", after: "all" }), /either before or after/);
  });
});

test("a second XDP attach on the same interface says what is in the way", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and XDP")) return;
  const bed = Testbed.create();
  t.after(() => bed.destroy());
  using program = Program.load({ type: ProgramType.Xdp, instructions: Buffer.from("b7000000020000009500000000000000", "hex") });
  bed.inNamespace(bed.a, () => {
    using link = attachXdp(program, { interface: bed.a.interface });
    assert.equal(link.mode, "native");
    assert.throws(() => attachXdp(program, { interface: bed.a.interface }), (e: Error & { code?: string }) => e.code === "EBUSY" && /already has an XDP program/.test(e.message));
  });
});
