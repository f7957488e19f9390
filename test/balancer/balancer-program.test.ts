import assert from "node:assert/strict";
import { test } from "node:test";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { balancerMapNames, backendStatsCodec } from "../../src/balancer/balancer-program.js";
import { maglevTable } from "../../src/balancer/maglev.js";
import { seededRandom } from "../support/seeded-random.js";
import { balancerProgramFixture, fixturePort, fixtureVip, ipv4Checksum, tcpChecksumOf, tcpFrame, u32Key } from "./balancer-program-fixture.js";

const tcActionRedirect = 7;
const tcxNext = 0xffffffff; // TCX_NEXT (-1) as the run reports it

test("NAT forwarding decrements the TTL and keeps both checksums right, both ways", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  const fixture = balancerProgramFixture();
  t.after(() => fixture.close());
  const toVip = tcpFrame([192, 0, 2, 1], fixtureVip, 40000, fixturePort, 64);
  const forward = fixture.program.run({ data: toVip });
  assert.equal(forward.returnValue, tcActionRedirect);
  const out = forward.dataOut!;
  assert.equal(out[14 + 8], 63, "TTL after the balancer");
  assert.equal(ipv4Checksum(out.subarray(14, 34)), 0, "IPv4 header checksum");
  assert.equal(tcpChecksumOf(out), 0, "TCP checksum");
  assert.deepEqual([...out.subarray(30, 32)], [198, 18], "sent to a backend");
  assert.equal(out[33], 2);

  const reply = tcpFrame([...out.subarray(30, 34)], [...out.subarray(26, 30)], 8080, out.readUInt16BE(34), 50);
  const back = fixture.program.run({ data: reply });
  assert.equal(back.returnValue, tcActionRedirect);
  const translated = back.dataOut!;
  assert.equal(translated[14 + 8], 49);
  assert.deepEqual([...translated.subarray(26, 30)], fixtureVip, "the reply comes from the VIP");
  assert.deepEqual([...translated.subarray(30, 34)], [192, 0, 2, 1]);
  assert.equal(translated.readUInt16BE(34), fixturePort);
  assert.equal(translated.readUInt16BE(36), 40000);
  assert.equal(ipv4Checksum(translated.subarray(14, 34)), 0);
  assert.equal(tcpChecksumOf(translated), 0);
});

test("a packet whose TTL would expire goes to the kernel unchanged", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  const fixture = balancerProgramFixture();
  t.after(() => fixture.close());
  const expiring = tcpFrame([192, 0, 2, 7], fixtureVip, 40001, fixturePort, 1);
  const result = fixture.program.run({ data: expiring });
  assert.equal(result.returnValue, tcxNext);
  assert.deepEqual(result.dataOut, expiring);
});

test("a truncated frame is passed on, not read past its end", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  const fixture = balancerProgramFixture();
  t.after(() => fixture.close());
  const frame = tcpFrame([192, 0, 2, 8], fixtureVip, 40002, fixturePort);
  // IP header present, ports cut off after 2 bytes.
  const short = frame.subarray(0, 14 + 20 + 2);
  assert.equal(fixture.program.run({ data: short }).returnValue, tcxNext);
});

test("a SYN on the 5-tuple of a tracked flow starts a new flow; other segments keep following the old backend", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  const fixture = balancerProgramFixture();
  t.after(() => fixture.close());
  const client = [192, 0, 2, 9];
  const send = (flags: number) => {
    const result = fixture.program.run({ data: tcpFrame(client, fixtureVip, 40100, fixturePort, 64, flags) });
    assert.equal(result.returnValue, tcActionRedirect);
    return { backend: result.dataOut![32]!, natPort: result.dataOut!.readUInt16BE(34) };
  };
  const flows = () => [0, 1, 2].reduce((sum, i) => sum + fixture.maps[balancerMapNames.stats]!.getPerCpu(u32Key(i))!
    .reduce((s, v) => s + backendStatsCodec.decode(v as Buffer, 0).flows, 0n), 0n);
  const reverseEntries = () => [...fixture.maps[balancerMapNames.reverse]!.keys()].length;

  const first = send(0x02);
  assert.equal(flows(), 1n);
  assert.deepEqual(send(0x10), first, "the connection's next segment follows its flow");
  assert.deepEqual(send(0x02), first, "a retransmitted SYN picks again and lands where the table says");
  assert.equal(flows(), 2n, "every SYN counts as a flow");
  assert.equal(reverseEntries(), 1, "the old flow's NAT port was given back");

  // The first backend drains: the table no longer has it, its entry stays (state 2).
  const others = [0, 1, 2].filter((i) => i !== first.backend);
  const table = maglevTable(others.map((i) => ({ key: String(i), weight: 1 })), 4093);
  const maglev = fixture.maps[balancerMapNames.maglev]!;
  maglev.updateBatch(Array.from(table, (backend, slot) => [u32Key(slot), u32Key(others[backend]!)] as [Buffer, Buffer]));
  const backends = fixture.maps[balancerMapNames.backends]!;
  const entry = Buffer.from(backends.get(u32Key(first.backend)) as Buffer);
  entry.writeUInt32LE(2, 36);
  backends.put(u32Key(first.backend), entry);

  assert.deepEqual(send(0x10), first, "an established flow stays on its draining backend");
  const reused = send(0x02);
  assert.notEqual(reused.backend, first.backend, "a new connection on a reused client port does not follow the old flow to a draining backend");
  assert.equal(send(0x10).backend, reused.backend, "and its next segments follow the new flow");
  assert.equal(reverseEntries(), 1);
  assert.equal(flows(), 3n);
});

test("a new flow finds a free NAT port while a quarter of every backend's ports are taken", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  const fixture = balancerProgramFixture();
  t.after(() => fixture.close());
  // Reverse entries (the flow key of a backend's replies to one of our NAT ports) for a random quarter of the range.
  const random = seededRandom(20261206);
  const taken: [Buffer, Buffer][] = [];
  for (let backend = 0; backend < 3; backend++) {
    for (let port = 10000; port <= 32767; port++) {
      if (random() >= 0.25) continue;
      const key = Buffer.alloc(40);
      Buffer.from([198, 18, backend, 2]).copy(key, 0);
      Buffer.from([198, 18, backend, 1]).copy(key, 16);
      key.writeUInt16BE(8080, 32);
      key.writeUInt16BE(port, 34);
      key.writeUInt32LE(6, 36);
      taken.push([key, Buffer.alloc(32)]);
    }
  }
  fixture.maps[balancerMapNames.reverse]!.updateBatch(taken);
  // 2,000 new connections: with 4 candidates per flow (0.25^4 each) about 8 would find none;
  // with 16 the chance that any does is 2,000 × 0.25^16 ≈ 5·10^-7.
  let dropped = 0;
  for (let i = 0; i < 2000; i++) {
    const syn = tcpFrame([192, 0, 2, 20 + (i % 200)], fixtureVip, 20000 + i, fixturePort, 64, 0x02);
    if (fixture.program.run({ data: syn }).returnValue !== tcActionRedirect) dropped++;
  }
  assert.equal(dropped, 0, `${dropped} of 2000 SYNs found no free NAT port`);
});
