import assert from "node:assert/strict";
import { test } from "node:test";
import { headerOnlyPacket } from "../../src/pcap/header-packet.js";
import { parseIpv4, parseIpv6 } from "../../src/pcap/address-text.js";
import { compileFilter } from "../../src/filter/compile-filter.js";
import { LinkType } from "../../src/pcap/link-type.js";

test("a header-only packet is what the filter compiler reads as that flow's packet", () => {
  const v4 = { source: parseIpv4("10.0.0.1")!, destination: parseIpv4("192.0.2.7")! };
  const v6 = { source: parseIpv6("2001:db8::1")!, destination: parseIpv6("2001:db8::2")! };
  const cases: [Buffer, string, boolean][] = [
    [headerOnlyPacket({ protocol: 6, ...v4, sourcePort: 40000, destinationPort: 443, tcpFlags: 0x02 }), "tcp src port 40000 and dst port 443 and tcp[tcpflags] == tcp-syn and src host 10.0.0.1", true],
    [headerOnlyPacket({ protocol: 6, ...v4, sourcePort: 40000, destinationPort: 443 }), "tcp[tcpflags] & tcp-ack != 0 and len == 40", true],
    [headerOnlyPacket({ protocol: 17, ...v6, sourcePort: 5353, destinationPort: 53 }), "ip6 and udp dst port 53 and src host 2001:db8::1 and len == 48", true],
    [headerOnlyPacket({ protocol: 17, ...v4, sourcePort: 1, destinationPort: 2, dontFragment: true }), "ip[6] & 0x40 != 0 and udp", true],
    [headerOnlyPacket({ protocol: 1, ...v4, sourcePort: 1, destinationPort: 2 }), "icmp and len == 20", true],
    [headerOnlyPacket({ protocol: 17, ...v4, sourcePort: 1, destinationPort: 2 }), "tcp or ip[6] & 0x40 != 0", false],
  ];
  for (const [packet, expression, expected] of cases) {
    assert.equal(compileFilter(expression, { linkType: LinkType.RAW }).matches(packet), expected, expression);
  }
  assert.throws(() => headerOnlyPacket({ protocol: 6, source: v4.source, destination: v6.destination, sourcePort: 1, destinationPort: 2 }), RangeError);
});
