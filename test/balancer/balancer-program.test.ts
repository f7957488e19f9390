import assert from "node:assert/strict";
import { test } from "node:test";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { balancerProgramFixture, fixturePort, fixtureVip, ipv4Checksum, tcpChecksumOf, tcpFrame } from "./balancer-program-fixture.js";

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
