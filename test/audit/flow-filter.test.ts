import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { compileFlowFilter, flowPacket, recordTuples } from "../../src/audit/flow-filter.js";
import { FilterSyntaxError } from "../../src/filter/filter-syntax-error.js";
import { skipUnlessTool } from "../support/kernel.js";
import { writePcap } from "../support/pcap-writer.js";
import { seededRandom } from "../support/seeded-random.js";
import { tcpdumpAvailable, tcpdumpSelect } from "../filter/tcpdump-oracle.js";
import { dnsRecord, record } from "./record-builders.js";

test("a flow matches in the direction its originator sent", () => {
  const ssh = compileFlowFilter("tcp dst port 22");
  assert.equal(ssh.matches(record({ flow: { direction: "outbound", remotePort: 22 } })), true, "outbound to port 22");
  assert.equal(ssh.matches(record({ flow: { direction: "inbound", localPort: 22, remotePort: 51000 } })), true, "inbound to our port 22");
  assert.equal(ssh.matches(record({ flow: { direction: "outbound", localPort: 22, remotePort: 443 } })), false, "from local port 22 to 443");
  assert.equal(ssh.matches(record({ kind: "udp", flow: { direction: "outbound", remotePort: 22 } })), false, "UDP to 22");
  // Unknown direction: either end may have opened it.
  assert.equal(ssh.matches(record({ flow: { direction: null, localPort: 22, remotePort: 51000 } })), true);
  const source = compileFlowFilter("src net 10.0.0.0/8");
  assert.equal(source.matches(record({ flow: { direction: "outbound", localAddress: "10.1.2.3" } })), true);
  assert.equal(source.matches(record({ flow: { direction: "inbound", localAddress: "10.1.2.3", remoteAddress: "192.0.2.9" } })), false);
  // A listener is matched as the packet a client would send to it.
  const listener = compileFlowFilter("dst port 8080");
  assert.equal(listener.matches(record({ kind: "listen", flow: { direction: null, localAddress: "0.0.0.0", localPort: 8080, remoteAddress: "0.0.0.0", remotePort: 0 } })), true);
  // DNS exchanges: client to server, UDP.
  assert.equal(compileFlowFilter("udp dst port 53 and dst host 10.0.0.53").matches(dnsRecord("example.com", [])), true);
  // No flow, no match.
  assert.equal(compileFlowFilter("ip").matches(record({ kind: "drop", flow: null, process: null })), false);
  const six = compileFlowFilter("ip6 and dst net 2001:db8::/32");
  assert.equal(six.matches(record({ flow: { family: "ipv6", localAddress: "2001:db8:1::5", remoteAddress: "2001:db8::10" } })), true);
  assert.equal(six.matches(record()), false);
});

test("expressions that look past the 5-tuple are refused, pointing at the primitive", () => {
  for (const [expression, offset] of [["tcp and tcp[13] & 2 != 0", 8], ["len > 100", 0], ["port 22 or inbound", 11], ["vlan 10", 0], ["ether host 00:11:22:33:44:55", 0]] as const) {
    assert.throws(() => compileFlowFilter(expression), (error: unknown) => {
      assert.ok(error instanceof FilterSyntaxError, `${expression}: ${String(error)}`);
      assert.equal(error.position, offset, `${expression}: ${error.message}`);
      return true;
    });
  }
});

const expressions = [
  "tcp dst port 22", "port 53", "src net 10.0.0.0/8", "dst host 192.0.2.10", "ip6 and udp", "portrange 1000-2000", "not port 443 and tcp",
  "host ::1", "dst net 2001:db8::/32", "udp and dst port 53", "ip proto 17", "src port 40000 or dst port 8080", "ip multicast", "ip6 multicast",
  "tcp and (dst portrange 1-1023 or src portrange 1-1023)", "net 192.0.2.0/24 and not src host 192.0.2.7", "dst host 127.0.0.1 and tcp",
];

test("the synthesised packets select what tcpdump selects (raw IP captures)", async (t) => {
  if (skipUnlessTool(t, await tcpdumpAvailable(), "tcpdump is not installed")) return;
  const random = seededRandom(10);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const v4 = ["10.0.0.5", "10.9.8.7", "192.0.2.10", "192.0.2.7", "127.0.0.1", "224.0.0.251", "198.51.100.1"];
  const v6 = ["::1", "2001:db8::10", "2001:db8:1::5", "fe80::1", "ff02::fb", "2001:db9::1"];
  const ports = [22, 53, 80, 443, 1000, 1500, 2000, 8080, 40000, 51000];
  const records = Array.from({ length: 300 }, () => {
    const family = random() < 0.6 ? "ipv4" as const : "ipv6" as const;
    const addresses = family === "ipv4" ? v4 : v6;
    return record({
      kind: random() < 0.5 ? "connection" : "udp",
      flow: { family, direction: pick(["outbound", "inbound", null] as const), localAddress: pick(addresses), remoteAddress: pick(addresses), localPort: pick(ports), remotePort: pick(ports) },
    });
  });
  const directory = mkdtempSync(join(tmpdir(), "netbpf-flow-filter-"));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  // Packet i of the capture is tuple i; a record matches when one of its tuples does.
  const tuples = records.flatMap((item, index) => recordTuples(item).map((tuple) => ({ index, tuple })));
  const file = join(directory, "flows.pcap");
  writeFileSync(file, writePcap(101, tuples.map(({ tuple }, i) => ({ data: flowPacket(tuple)!, seconds: i }))));
  for (const expression of expressions) {
    const selected = await tcpdumpSelect(file, expression);
    assert.notEqual(selected, "error", `tcpdump refused ${expression}`);
    const expected = new Set((selected as number[]).map((packet) => tuples[packet]!.index));
    const filter = compileFlowFilter(expression);
    const actual = new Set(records.flatMap((item, index) => (filter.matches(item) ? [index] : [])));
    assert.deepEqual([...actual].sort((a, b) => a - b), [...expected].sort((a, b) => a - b), expression);
    assert.ok(expected.size > 0 && expected.size < records.length, `${expression} should split the records (${expected.size})`);
  }
});

test("IPv4-mapped addresses are IPv4 on the wire; \"either\" direction matches any packet of the flow", () => {
  const mapped = record({ flow: { family: "ipv6", localAddress: "::ffff:10.0.0.5", remoteAddress: "::ffff:192.0.2.10", remotePort: 22 } });
  assert.equal(compileFlowFilter("ip and dst host 192.0.2.10 and tcp dst port 22").matches(mapped), true);
  assert.equal(compileFlowFilter("ip6").matches(mapped), false);
  const reply = compileFlowFilter("src port 22");
  assert.equal(reply.matches(mapped), false, "the originator's packet goes to port 22");
  assert.equal(compileFlowFilter("src port 22", { directions: "either" }).matches(mapped), true, "the reply comes from port 22");
  assert.equal(compileFlowFilter("src port 53", { directions: "either" }).matches(dnsRecord("example.org", [])), true);
  assert.equal(compileFlowFilter("src port 53").matches(dnsRecord("example.org", [])), false);
});
