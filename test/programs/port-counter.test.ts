import { test } from "node:test";
import assert from "node:assert/strict";
import { Program } from "../../src/core/program.js";
import { BpfMap } from "../../src/core/map.js";
import { MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { u32 } from "../../src/core/codec.js";
import { portCounterMapName, portCounterProgram, portCounterValue } from "../../src/programs/port-counter.js";
import { ethernet, etherTypeIpv4, etherTypeIpv6, ipv4, ipv6, tcp, udp } from "../support/packets.js";
import { skipUnlessRoot } from "../support/kernel.js";

function sum(values: { packets: bigint; bytes: bigint }[] | undefined) {
  return (values ?? []).reduce((a, v) => ({ packets: a.packets + v.packets, bytes: a.bytes + v.bytes }), { packets: 0n, bytes: 0n });
}

test("port counter counts only TCP packets of its port, both address families, per direction", (t) => {
  if (skipUnlessRoot(t, "to load and test-run programs")) return;
  using counts = BpfMap.create({ type: MapType.PercpuArray, key: u32, value: portCounterValue, maxEntries: 2, name: portCounterMapName });
  using ingress = Program.load({ type: ProgramType.SchedCls, instructions: portCounterProgram(8080, "ingress"), name: "port_in" }, { maps: { [portCounterMapName]: counts } });
  using egress = Program.load({ type: ProgramType.SchedCls, instructions: portCounterProgram(8080, "egress"), name: "port_out" }, { maps: { [portCounterMapName]: counts } });
  const toPort = ethernet(etherTypeIpv4, ipv4(6, tcp(40000, 8080, Buffer.alloc(100))));
  const fromPort = ethernet(etherTypeIpv6, ipv6(6, tcp(8080, 40000, Buffer.alloc(10))));
  const otherPort = ethernet(etherTypeIpv4, ipv4(6, tcp(40000, 8081)));
  const udpSamePort = ethernet(etherTypeIpv4, ipv4(17, udp(40000, 8080)));
  const laterFragment = ethernet(etherTypeIpv4, ipv4(6, tcp(40000, 8080), { fragmentOffset: 100 }));
  // The kernel's test run needs a whole IP header; cut inside the TCP ports instead.
  const truncated = toPort.subarray(0, 14 + 20 + 3);
  for (const packet of [toPort, fromPort, otherPort, udpSamePort, laterFragment, truncated]) {
    const result = ingress.run({ data: packet });
    assert.equal(result.returnValue, 0xffffffff, "the program must let every packet continue");
  }
  egress.run({ data: toPort, repeat: 3 });
  assert.deepEqual(sum(counts.getPerCpu(0)), { packets: 2n, bytes: BigInt(toPort.length + fromPort.length) });
  assert.deepEqual(sum(counts.getPerCpu(1)), { packets: 3n, bytes: BigInt(3 * toPort.length) });
});

test("port counter refuses an invalid port", () => {
  assert.throws(() => portCounterProgram(0, "ingress"), /port must be an integer from 1 to 65535/);
  assert.throws(() => portCounterProgram(70000, "egress"), /port must be an integer from 1 to 65535/);
  assert.throws(() => portCounterProgram(80, "sideways" as "ingress"), /direction must be one of "ingress", "egress", got "sideways"/);
});
