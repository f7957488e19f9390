import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { balancerMapNames, backendStatsCodec, reverseCodec } from "../../src/balancer/balancer-program.js";
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
      taken.push([key, Buffer.alloc(reverseCodec.size)]);
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

const tcActionShot = 2;
const fin = 0x01, syn = 0x02, rst = 0x04, ack = 0x10;

/** One client's connection to the VIP through the fixture, and its backend's side. */
function connection(fixture: ReturnType<typeof balancerProgramFixture>, client: number[], clientPort: number) {
  let backend: number[] = [];
  let nat: number[] = [];
  let natPort = 0;
  return {
    /** A segment from the client; a redirected SYN fixes the backend side. */
    send(flags: number) {
      const result = fixture.program.run({ data: tcpFrame(client, fixtureVip, clientPort, fixturePort, 64, flags) });
      if (result.returnValue === tcActionRedirect) {
        const out = result.dataOut!;
        if (flags === syn) {
          backend = [...out.subarray(30, 34)];
          nat = [...out.subarray(26, 30)];
          natPort = out.readUInt16BE(34);
        }
        assert.deepEqual([[...out.subarray(26, 34)], out.readUInt16BE(34)], [[...nat, ...backend], natPort], "translated as the flow's own");
      }
      return result.returnValue;
    },
    /** A segment from the backend to the flow's NAT port; returns where it went (client address and port) if translated. */
    reply(flags: number) {
      const result = fixture.program.run({ data: tcpFrame(backend, nat, 8080, natPort, 64, flags) });
      if (result.returnValue !== tcActionRedirect) return undefined;
      return { client: [...result.dataOut!.subarray(30, 34)], port: result.dataOut!.readUInt16BE(36) };
    },
    get natPort() { return natPort; },
  };
}

test("a reset flow's NAT port is taken over by a new flow once the hold time has passed, and a live flow's never", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  const holdMs = 200;
  const fixture = balancerProgramFixture({ backends: 1, natPorts: { first: 10000, last: 10000 }, natPortHoldMs: holdMs });
  t.after(() => fixture.close());
  const first = connection(fixture, [192, 0, 2, 31], 40000);
  const second = connection(fixture, [192, 0, 2, 32], 40001);
  const third = connection(fixture, [192, 0, 2, 33], 40002);
  assert.equal(first.send(syn), tcActionRedirect);
  assert.equal(first.natPort, 10000);
  assert.deepEqual(first.reply(syn | ack), { client: [192, 0, 2, 31], port: 40000 });
  assert.equal(second.send(syn), tcActionShot, "the only NAT port is held by a live flow");
  await sleep(holdMs + 50);
  assert.equal(second.send(syn), tcActionShot, "a live flow keeps its port however long it is idle");

  assert.equal(first.send(rst | ack), tcActionRedirect, "the client's RST is translated");
  assert.equal(second.send(syn), tcActionShot, "a reset flow keeps its port for the hold time");
  assert.equal(first.send(ack), tcActionRedirect, "a late packet of the reset flow is still translated");
  assert.deepEqual(first.reply(rst), { client: [192, 0, 2, 31], port: 40000 }, "and so is the backend's");
  await sleep(holdMs + 50);
  assert.equal(second.send(syn), tcActionRedirect, "the hold time has passed: a new flow takes the port over");
  assert.equal(second.natPort, 10000);
  assert.deepEqual(second.reply(syn | ack), { client: [192, 0, 2, 32], port: 40001 }, "the backend's replies go to the new flow's client");
  const conntrack = [...fixture.maps[balancerMapNames.conntrack]!.keys()] as Buffer[];
  assert.deepEqual(conntrack.map((key) => [...key.subarray(0, 4)]), [[192, 0, 2, 32]], "the old flow is forgotten");
  assert.equal(first.send(ack), tcActionShot, "the old client's stray packet does not get the new flow's port");

  // The backend resets this one.
  assert.equal(third.send(syn), tcActionShot);
  assert.deepEqual(second.reply(rst), { client: [192, 0, 2, 32], port: 40001 }, "the backend's RST is translated");
  assert.equal(third.send(syn), tcActionShot, "within the hold time");
  await sleep(holdMs + 50);
  assert.equal(third.send(syn), tcActionRedirect, "a flow the backend reset gives its port back too");
  assert.deepEqual(third.reply(syn | ack), { client: [192, 0, 2, 33], port: 40002 });
});

test("a flow closed by a FIN each way gives its port back after the last ACK; a half-closed flow keeps it", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  const holdMs = 200;
  const fixture = balancerProgramFixture({ backends: 1, natPorts: { first: 10000, last: 10000 }, natPortHoldMs: holdMs });
  t.after(() => fixture.close());
  const first = connection(fixture, [192, 0, 2, 41], 40000);
  const second = connection(fixture, [192, 0, 2, 42], 40001);
  assert.equal(first.send(syn), tcActionRedirect);
  first.reply(syn | ack);
  assert.equal(first.send(ack), tcActionRedirect);
  assert.equal(first.send(fin | ack), tcActionRedirect, "the client's FIN is translated");
  await sleep(holdMs + 50);
  assert.equal(second.send(syn), tcActionShot, "a half-closed flow is live: the backend may still send");
  assert.deepEqual(first.reply(ack), { client: [192, 0, 2, 41], port: 40000 }, "and what it sends reaches the client");
  assert.deepEqual(first.reply(fin | ack), { client: [192, 0, 2, 41], port: 40000 }, "the backend's FIN is translated");
  assert.equal(first.send(ack), tcActionRedirect, "the final ACK is translated");
  assert.equal(second.send(syn), tcActionShot, "a closed flow keeps its port for the hold time");
  await sleep(holdMs + 50);
  assert.equal(second.send(syn), tcActionRedirect, "then a new flow takes it over");
  assert.equal(second.natPort, 10000);
  assert.deepEqual(second.reply(syn | ack), { client: [192, 0, 2, 42], port: 40001 });
});

test("new flows are not dropped when nearly every NAT port of every backend is held by a closed flow", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  const holdMs = 300;
  const ports = 64;
  const fixture = balancerProgramFixture({ natPorts: { first: 10000, last: 10000 + ports - 1 }, natPortHoldMs: holdMs });
  t.after(() => fixture.close());
  // Short connections until the ports run out, each closed as soon as it opened: by a RST, or by a FIN each way.
  let opened = 0;
  for (let i = 0; i < 1000; i++) {
    const flow = connection(fixture, [192, 0, 2, 100 + (i % 100)], 30000 + i);
    if (flow.send(syn) !== tcActionRedirect) continue;
    opened++;
    flow.reply(syn | ack);
    if (i % 2 === 0) {
      flow.send(rst | ack);
    } else {
      flow.send(fin | ack);
      flow.reply(fin | ack);
      flow.send(ack);
    }
  }
  const held = [...fixture.maps[balancerMapNames.reverse]!.keys()].length;
  assert.ok(held >= 0.95 * 3 * ports, `${held} of ${3 * ports} NAT ports held by closed flows (${opened} connections)`);
  await sleep(holdMs + 50);
  let dropped = 0;
  for (let i = 0; i < 60; i++) {
    if (connection(fixture, [192, 0, 2, 200 + (i % 50)], 50000 + i).send(syn) !== tcActionRedirect) dropped++;
  }
  assert.equal(dropped, 0, `${dropped} of 60 SYNs found no NAT port`);
});
