import { test } from "node:test";
import assert from "node:assert/strict";
import { isIPv6 } from "node:net";
import { formatHardwareAddress, formatIpv4, formatIpv6, parseHardwareAddress, parseIpv4, parseIpv6 } from "../../src/pcap/address-text.js";
import { seededRandom } from "./capture-samples.js";

test("IPv6 text follows RFC 5952", () => {
  const cases: [string, string][] = [
    ["::", "::"],
    ["::1", "::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["fe80::1:2", "fe80::1:2"],
    ["::ffff:10.0.0.1", "::ffff:10.0.0.1"],
    ["::ffff:a00:1", "::ffff:10.0.0.1"],
    ["::1:ffff:a00:1", "::1:ffff:a00:1"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
  ];
  for (const [input, expected] of cases) assert.equal(formatIpv6(parseIpv6(input)!), expected, input);
  for (const bad of ["1::2::3", "12345::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "g::", ":::"]) assert.equal(parseIpv6(bad), undefined, bad);
});

test("random IPv6 addresses survive format and parse, and Node agrees they are valid", () => {
  const random = seededRandom(6);
  for (let i = 0; i < 500; i++) {
    const bytes = Buffer.alloc(16);
    for (let j = 0; j < 16; j++) bytes[j] = random() < 0.5 ? 0 : Math.floor(random() * 256);
    const text = formatIpv6(bytes);
    assert.ok(isIPv6(text), text);
    assert.deepEqual(parseIpv6(text), bytes);
  }
});

test("IPv4 and hardware addresses", () => {
  assert.equal(formatIpv4(parseIpv4("192.168.0.255")!), "192.168.0.255");
  for (const bad of ["1.2.3", "256.1.1.1", "1.2.3.4.5", "a.b.c.d", "1..2.3"]) assert.equal(parseIpv4(bad), undefined, bad);
  assert.equal(formatHardwareAddress(parseHardwareAddress("00-1A-2b-3c-4d-5e", 6)!), "00:1a:2b:3c:4d:5e");
  assert.equal(parseHardwareAddress("00:11:22:33:44", 6), undefined);
  assert.equal(parseHardwareAddress("00:11:22:33:44:55", 8), undefined);
});
