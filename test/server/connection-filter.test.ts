import { test } from "node:test";
import assert from "node:assert/strict";
import { ConnectionFilter, connectionPacket, maximumConnectionFilterLength } from "../../src/server/connection-filter.js";
import { compileFilter } from "../../src/filter/compile-filter.js";
import { FilterSyntaxError } from "../../src/filter/filter-syntax-error.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { UsageError } from "../../src/sys/errors.js";

const web = { protocol: "tcp", localAddress: "10.0.0.5", localPort: 443, remoteAddress: "192.0.2.7", remotePort: 51000 };
const client = { protocol: "tcp", localAddress: "10.0.0.5", localPort: 40000, remoteAddress: "198.51.100.9", remotePort: 22 };
const dns = { protocol: "udp", localAddress: "10.0.0.5", localPort: 53000, remoteAddress: "9.9.9.9", remotePort: 53 };
const six = { protocol: "tcp", localAddress: "2001:db8::1", localPort: 8080, remoteAddress: "2001:db8::2", remotePort: 50000 };
const mapped = { protocol: "tcp", localAddress: "::ffff:10.0.0.5", localPort: 443, remoteAddress: "::ffff:192.0.2.7", remotePort: 51000 };
const all = { web, client, dns, six, mapped };

function matching(expression: string): string[] {
  const filter = ConnectionFilter.compile(expression);
  return Object.entries(all).filter(([, connection]) => filter.matches(connection)).map(([name]) => name);
}

test("a connection matches when a packet of it in either direction would", () => {
  assert.deepEqual(matching("port 443"), ["web", "mapped"]);
  assert.deepEqual(matching("tcp"), ["web", "client", "six", "mapped"]);
  assert.deepEqual(matching("udp port 53"), ["dns"]);
  assert.deepEqual(matching("host 192.0.2.7"), ["web", "mapped"]);
  assert.deepEqual(matching("src port 22"), ["client"]);
  assert.deepEqual(matching("dst port 22"), ["client"]);
  assert.deepEqual(matching("ip6"), ["six"]);
  assert.deepEqual(matching("net 198.51.100.0/24 or port 8080"), ["client", "six"]);
  assert.deepEqual(matching("tcp and not port 443"), ["client", "six"]);
  // As in libpcap, tcp[…] reads IPv4 packets only.
  assert.deepEqual(matching("tcp[tcpflags] & tcp-ack != 0"), ["web", "client", "mapped"]);
  // Direction: packets to this host are inbound; "inbound and dst port 443" is the server side of web.
  assert.deepEqual(matching("inbound and dst port 443"), ["web", "mapped"]);
  assert.deepEqual(matching("outbound and dst port 443"), []);
});

test("the packets the filter sees agree with the compiler's own reading of them", () => {
  const source = Buffer.from([10, 0, 0, 5]);
  const destination = Buffer.from([192, 0, 2, 7]);
  const packet = connectionPacket(6, source, 443, destination, 51000);
  assert.equal(packet.length, 40);
  for (const [expression, expected] of [["src host 10.0.0.5 and dst port 51000", true], ["src port 51000", false], ["tcp[13] = 16", true], ["len = 40", true]] as const) {
    assert.equal(compileFilter(expression, { linkType: LinkType.RAW }).matches(packet), expected, expression);
  }
  assert.equal(connectionPacket(17, source, 1, destination, 2).length, 28);
});

test("bad input from the page is refused with a message", () => {
  assert.throws(() => ConnectionFilter.compile("tcp port"), (error: unknown) => error instanceof FilterSyntaxError && /expected/.test((error as Error).message));
  assert.throws(() => ConnectionFilter.compile("ether host 01:02:03:04:05:06"), UsageError);
  assert.throws(() => ConnectionFilter.compile(""), /empty/);
  assert.throws(() => ConnectionFilter.compile("   "), /empty/);
  assert.throws(() => ConnectionFilter.compile(42), /filter connections: expression must be a string, got 42 \(a number\)/);
  assert.throws(() => ConnectionFilter.compile("port 1\u0000"), /control characters/);
  assert.throws(() => ConnectionFilter.compile(`port 1${" or port 2".repeat(200)}`), new RegExp(`at most ${maximumConnectionFilterLength}`));
  // Connections the filter cannot read (no addresses) simply do not match.
  assert.equal(ConnectionFilter.compile("tcp").matches({ protocol: "tcp" }), false);
});

test("matches() refuses a connection that is not one, naming the bad field", () => {
  const filter = ConnectionFilter.compile("tcp port 443");
  const refused = (pattern: RegExp) => (error: Error) => error instanceof UsageError && pattern.test(error.message);
  assert.throws(() => filter.matches(undefined as never), refused(/connection must be an object, got undefined/));
  assert.throws(() => filter.matches("10.0.0.1" as never), refused(/connection must be an object/));
  assert.throws(() => filter.matches({ protocol: 6 } as never), refused(/connection\.protocol must be a string, got 6/));
  assert.throws(() => filter.matches({ localAddress: [10, 0, 0, 1] } as never), refused(/connection\.localAddress must be a string/));
  assert.throws(() => filter.matches({ remotePort: "443" } as never), refused(/connection\.remotePort must be a port number/));
  assert.throws(() => filter.matches({ localPort: 70000 }), refused(/connection\.localPort must be a port number/));
  assert.equal(filter.matches({}), false);
});
