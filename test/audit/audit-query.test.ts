import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { AuditLog, emptyAuditRecord } from "../../src/audit/audit-log.js";
import { compileFlowFilter } from "../../src/audit/flow-filter.js";
import { queryAuditLog, summarizeAuditLog } from "../../src/audit/audit-query.js";
import type { AuditFlow, AuditRecord } from "../../src/audit/audit-record.js";
import { parseDnsMessage } from "../../src/audit/dns-message.js";
import { DnsPairing, parseDnsPacket, parseUdpDatagram } from "../../src/audit/dns-watcher.js";
import { zeekConnFields, zeekConnHeader, zeekConnLine } from "../../src/audit/zeek-conn-log.js";
import { parseSize, parseTime } from "../../src/cli/audit-command.js";
import { UsageError } from "../../src/sys/errors.js";
import { runCli } from "../support/cli.js";
import { seededRandom } from "../support/seeded-random.js";

function flowRecord(kind: "connection" | "udp", flow: Partial<AuditFlow>, process: { pid: number; command: string; uid: number }, time: number): AuditRecord {
  const record = emptyAuditRecord(kind, new Date(time - 1000), new Date(time));
  record.flow = { protocol: kind === "udp" ? "udp" : "tcp", family: "ipv4", direction: "outbound", localAddress: "127.0.0.1", localPort: 40000, remoteAddress: "127.0.0.1", remotePort: 80, remoteName: null, ...flow };
  record.process = { ...process, parentPid: 1, executable: `/usr/bin/${process.command}`, cgroupId: null, cgroupPath: null, containerId: null };
  record.bytesSent = 100;
  record.bytesReceived = 200;
  record.closeReason = "fin";
  return record;
}

test("queries' flow filter evaluates tcpdump expressions over a flow in either direction", () => {
  const matches = (expression: string, flow: AuditFlow | null) => {
    const record = emptyAuditRecord("connection", new Date(0), new Date(0));
    record.flow = flow;
    return compileFlowFilter(expression, { directions: "either" }).matches(record);
  };
  const flow: AuditFlow = { protocol: "tcp", family: "ipv4", direction: "outbound", localAddress: "10.1.2.3", localPort: 40000, remoteAddress: "192.0.2.7", remotePort: 443, remoteName: null };
  const cases: [string, boolean][] = [
    ["tcp port 443", true], ["udp", false], ["dst port 443", true], ["src port 443", true], ["host 192.0.2.7 and port 40000", true],
    ["net 10.0.0.0/8", true], ["net 172.16.0.0/12", false], ["portrange 1-100", false], ["ip6", false],
  ];
  for (const [expression, expected] of cases) assert.equal(matches(expression, flow), expected, expression);
  const v6: AuditFlow = { ...flow, family: "ipv6", localAddress: "2001:db8::1", remoteAddress: "2001:db8::2", protocol: "udp", remotePort: 53 };
  assert.equal(matches("ip6 and udp port 53 and host 2001:db8::2", v6), true);
  assert.equal(matches("tcp", null), false);
  assert.throws(() => compileFlowFilter("port port"), UsageError);
  assert.throws(() => compileFlowFilter("tcp[tcpflags] & tcp-ack != 0"), UsageError);
});

test("queries select by time, process, pid, user, port, remote address, CIDR, DNS name and expression", (t) => {
  const directory = mkdtempSync(join(tmpdir(), "nbau-query-"));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  const path = join(directory, "audit.db");
  const now = Date.now();
  {
    using log = AuditLog.open(path);
    const dns = emptyAuditRecord("dns", new Date(now - 10_000));
    dns.dns = { queryName: "web.example.test", queryType: "A", responseCode: "NOERROR", answers: ["198.51.100.5"], clientAddress: "127.0.0.1", clientPort: 3333, serverAddress: "127.0.0.53", serverPort: 53 };
    const big = flowRecord("connection", { remoteAddress: "198.51.100.5", remotePort: 443, remoteName: "web.example.test" }, { pid: 11, command: "curl", uid: 1000 }, now - 5000);
    big.bytesReceived = 50_000;
    log.append([
      flowRecord("connection", { remoteAddress: "198.51.100.5", remotePort: 443 }, { pid: 10, command: "curl", uid: 1000 }, now - 3_600_000 * 3),
      dns,
      big,
      flowRecord("connection", { remoteAddress: "203.0.113.9", remotePort: 40000, direction: "inbound", localPort: 22 }, { pid: 12, command: "sshd", uid: 0 }, now - 4000),
      flowRecord("udp", { remoteAddress: "198.51.100.77", remotePort: 123 }, { pid: 13, command: "chronyd", uid: 107 }, now - 3000),
    ]);
  }
  using log = AuditLog.open(path, { readOnly: true });
  const sequences = (query: Parameters<typeof queryAuditLog>[1]) => queryAuditLog(log, query).map((record) => record.sequence);
  assert.deepEqual(sequences({}), [1, 2, 3, 4, 5]);
  assert.deepEqual(sequences({ since: new Date(now - 3_600_000) }), [2, 3, 4, 5]);
  assert.deepEqual(sequences({ until: new Date(now - 3_600_000) }), [1]);
  assert.deepEqual(sequences({ since: new Date(now - 3_600_000), process: "curl" }), [3]);
  assert.deepEqual(sequences({ process: "/usr/bin/sshd" }), [4]);
  assert.deepEqual(sequences({ pid: 13 }), [5]);
  assert.deepEqual(sequences({ uid: 1000 }), [1, 3]);
  assert.deepEqual(sequences({ port: 22 }), [4]);
  assert.deepEqual(sequences({ remote: "203.0.113.9" }), [4]);
  assert.deepEqual(sequences({ remote: "198.51.100.0/24" }), [1, 3, 5]);
  assert.deepEqual(sequences({ remote: "web.example.test" }), [1, 2, 3]);
  assert.deepEqual(sequences({ expression: "udp port 123" }), [5]);
  assert.deepEqual(sequences({ expression: "tcp and not port 22", kinds: ["connection"] }), [1, 3]);
  assert.deepEqual(sequences({ limit: 2, newestFirst: true }), [5, 4]);
  assert.throws(() => queryAuditLog(log, { remote: "10.0.0.0/33" }), UsageError);

  const summary = summarizeAuditLog(log, { since: new Date(now - 3_600_000) });
  assert.equal(summary.topTalkers[0]!.command, "curl");
  assert.equal(summary.topTalkers[0]!.bytesReceived, 50_000);
  assert.deepEqual(summary.newDestinations.map((destination) => `${destination.remoteAddress}:${destination.remotePort}`), ["198.51.100.77:123"]);

  const zeek = runCli(["audit", "query", "--db", path, "--zeek", "--since", "1h"]);
  assert.equal(zeek.status, 0, zeek.stderr);
  const lines = zeek.stdout.trim().split("\n");
  assert.equal(lines[0], "#separator \\x09");
  assert.equal(lines[6], `#fields\t${zeekConnFields.join("\t")}`);
  const data = lines.filter((line) => !line.startsWith("#"));
  assert.equal(data.length, 3);
  const inbound = data.find((line) => line.includes("203.0.113.9"))!.split("\t");
  assert.deepEqual([inbound[2], inbound[3], inbound[4], inbound[5], inbound[6], inbound[9], inbound[10], inbound[11], inbound[12]], ["203.0.113.9", "40000", "127.0.0.1", "22", "tcp", "200", "100", "SF", "F"]);
  assert.match(lines.at(-1)!, /^#close\t\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d$/);
  const json = runCli(["audit", "query", "--db", path, "--json", "--remote", "web.example.test"]);
  assert.equal(json.status, 0, json.stderr);
  assert.deepEqual(json.stdout.trim().split("\n").map((line) => JSON.parse(line).sequence), [1, 2, 3]);
});

test("Zeek header lines are those Zeek writes", () => {
  const header = zeekConnHeader(new Date(Date.UTC(2026, 0, 2, 3, 4, 5)));
  assert.match(header, /^#separator \\x09\n#set_separator\t,\n#empty_field\t\(empty\)\n#unset_field\t-\n#path\tconn\n#open\t2026-01-02-03-04-05\n#fields\tts\tuid\tid\.orig_h\tid\.orig_p\tid\.resp_h\tid\.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state/);
  assert.equal(zeekConnLine(emptyAuditRecord("dns", new Date())), undefined);
});

test("command-line times and sizes", () => {
  const now = Date.UTC(2026, 11, 4, 12);
  assert.equal(parseTime("1h", "--since", now).getTime(), now - 3_600_000);
  assert.equal(parseTime("2026-12-04T10:00:00Z", "--since").getTime(), Date.UTC(2026, 11, 4, 10));
  assert.throws(() => parseTime("soon", "--since"), UsageError);
  assert.equal(parseSize("1GB", "--max-size"), 1e9);
  assert.equal(parseSize("64MiB", "--max-size"), 64 * 1024 * 1024);
  assert.throws(() => parseSize("-1", "--max-size"), UsageError);
});

function dnsMessage(id: number, response: boolean, name: string, answers: string[]): Buffer {
  const labels = Buffer.concat([...name.split(".").map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)])), Buffer.from([0])]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(response ? 0x8180 : 0x0100, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const question = Buffer.concat([labels, Buffer.from([0, 1, 0, 1])]);
  // Answers point back at the question name (compression).
  const records = answers.map((address) => Buffer.concat([Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]), Buffer.from(address.split(".").map(Number))]));
  return Buffer.concat([header, question, ...records]);
}

/** An IPv4 packet: header (total length `wireLength`, else the packet's), then a transport header with the ports, then the payload. */
function ipv4Packet(protocol: number, source: string, destination: string, transport: Buffer, payload: Buffer, wireLength?: number): Buffer {
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip[9] = protocol;
  Buffer.from(source.split(".").map(Number)).copy(ip, 12);
  Buffer.from(destination.split(".").map(Number)).copy(ip, 16);
  ip.writeUInt16BE(wireLength ?? 20 + transport.length + payload.length, 2);
  return Buffer.concat([ip, transport, payload]);
}

function ports(length: number, sourcePort: number, destinationPort: number): Buffer {
  const header = Buffer.alloc(length);
  header.writeUInt16BE(sourcePort, 0);
  header.writeUInt16BE(destinationPort, 2);
  return header;
}

function udpPacket(source: string, sourcePort: number, destination: string, destinationPort: number, payload: Buffer): Buffer {
  return ipv4Packet(17, source, destination, ports(8, sourcePort, destinationPort), payload);
}

test("DNS messages parse (with compression) and questions pair with answers once, loopback copies merged", () => {
  const answer = parseDnsMessage(dnsMessage(7, true, "Web.Example.test", ["192.0.2.1", "192.0.2.2"]));
  assert.deepEqual(answer, { id: 7, response: true, responseCode: "NOERROR", queryName: "web.example.test", queryType: "A", answers: ["192.0.2.1", "192.0.2.2"] });
  const pairing = new DnsPairing(1000);
  const query = parseUdpDatagram(udpPacket("127.0.0.1", 5000, "127.0.0.53", 53, dnsMessage(7, false, "web.example.test", [])))!;
  const reply = parseUdpDatagram(udpPacket("127.0.0.53", 53, "127.0.0.1", 5000, dnsMessage(7, true, "web.example.test", ["192.0.2.1"])))!;
  const t0 = new Date(1000);
  assert.equal(pairing.add(query, t0), undefined);
  assert.equal(pairing.add(query, t0), undefined);
  const exchange = pairing.add(reply, new Date(1002));
  assert.equal(exchange?.clientPort, 5000);
  assert.deepEqual(exchange?.answers, ["192.0.2.1"]);
  assert.equal(exchange?.start.getTime(), 1000);
  assert.equal(pairing.add(reply, new Date(1003)), undefined, "the second copy of the answer is the same exchange");
  const lonely = parseUdpDatagram(udpPacket("127.0.0.1", 5001, "127.0.0.53", 53, dnsMessage(8, false, "gone.test", [])))!;
  pairing.add(lonely, new Date(2000));
  assert.deepEqual(pairing.expire(new Date(2500)), []);
  const expired = pairing.expire(new Date(3500));
  assert.equal(expired.length, 1);
  assert.equal(expired[0]!.responseCode, null);
});

test("the DNS parser never throws on random or mutated input", () => {
  const random = seededRandom(10);
  const valid = dnsMessage(1, true, "a.b.c.example.test", ["1.2.3.4", "5.6.7.8"]);
  for (let round = 0; round < 5000; round++) {
    const data = round % 2 === 0 ? Buffer.from(valid) : Buffer.alloc(Math.floor(random() * 80));
    for (let index = 0; index < data.length; index++) if (round % 2 === 1 || random() < 0.05) data[index] = Math.floor(random() * 256);
    const cut = data.subarray(0, Math.floor(random() * (data.length + 1)));
    parseDnsMessage(cut);
    parseUdpDatagram(cut);
    parseDnsPacket(cut);
    if (cut.length > 0) {
      cut[0] = 0x45;
      parseDnsPacket(cut);
    }
  }
});

/** An IPv4 TCP segment with a 32-byte header (total length as on the wire: `wireLength` when the copy is cut short). */
function tcpSegment(source: string, sourcePort: number, destination: string, destinationPort: number, payload: Buffer, wireLength?: number): Buffer {
  const tcp = ports(32, sourcePort, destinationPort);
  tcp[12] = 8 << 4;
  return ipv4Packet(6, source, destination, tcp, payload, wireLength);
}

const framed = (...messages: Buffer[]) => Buffer.concat(messages.flatMap((message) => [Buffer.from([message.length >> 8, message.length & 0xff]), message]));

test("DNS over TCP: each length-prefixed message of a segment, continuation segments skipped", () => {
  const first = dnsMessage(21, false, "one.example.test", []);
  const second = dnsMessage(22, false, "two.example.test", []);
  const pipelined = parseDnsPacket(tcpSegment("10.0.0.1", 40000, "10.0.0.53", 53, framed(first, second)));
  assert.deepEqual(pipelined.map((datagram) => [datagram.sourcePort, datagram.destinationPort, parseDnsMessage(datagram.payload)?.queryName]), [[40000, 53, "one.example.test"], [40000, 53, "two.example.test"]]);
  assert.deepEqual(parseDnsPacket(tcpSegment("10.0.0.1", 40000, "10.0.0.53", 53, Buffer.alloc(0))), [], "a bare ACK carries no message");
  // The second half of a message split over two segments: its first bytes are no length prefix.
  const answer = framed(dnsMessage(23, true, "three.example.test", ["192.0.2.3", "192.0.2.4"]));
  assert.deepEqual(parseDnsPacket(tcpSegment("10.0.0.53", 53, "10.0.0.1", 40000, answer.subarray(0, 20))), [], "a message cut by the segment end waits for nothing: skipped");
  assert.deepEqual(parseDnsPacket(tcpSegment("10.0.0.53", 53, "10.0.0.1", 40000, answer.subarray(20))), [], "the continuation is not misread as a message");
  // A copy cut at the copy length (the packet was longer on the wire): the message is taken as far as it goes.
  const cut = parseDnsPacket(tcpSegment("10.0.0.53", 53, "10.0.0.1", 40000, answer.subarray(0, answer.length - 4), 20 + 32 + answer.length));
  assert.equal(cut.length, 1);
  assert.equal(parseDnsMessage(cut[0]!.payload)?.queryName, "three.example.test");
  // UDP still parses through the same entry point.
  assert.equal(parseDnsPacket(udpPacket("127.0.0.1", 5000, "127.0.0.53", 53, first)).length, 1);
});

test("the audit log, queries, summaries and Zeek lines refuse bad arguments, naming them", () => {
  const untyped = (f: (...args: never[]) => unknown, ...args: unknown[]): unknown => (f as (...args: unknown[]) => unknown)(...args);
  const directory = mkdtempSync(join(tmpdir(), "nb-audit-arguments-"));
  try {
    using log = AuditLog.open(join(directory, "audit.db"));
    const cases: [() => unknown, RegExp][] = [
      [() => untyped(AuditLog.open, 42), /^open audit log: path must be a string, got 42 \(a number\)$/],
      [() => AuditLog.open(join(directory, "other.db"), { retainMilliseconds: 0 }), /options\.retainMilliseconds must be a positive number, got 0/],
      [() => AuditLog.open(join(directory, "other.db"), { readOnly: "yes" as never }), /options\.readOnly must be true or false, got "yes"/],
      [() => untyped(emptyAuditRecord, "flow", new Date()), /^empty audit record: kind must be one of "connection", .*, got "flow"/],
      [() => untyped(emptyAuditRecord, "dns", "2026-12-04"), /start must be a valid Date, got "2026-12-04"/],
      [() => untyped(queryAuditLog, {}), /^audit query: log must be an AuditLog \(from AuditLog\.open\)/],
      [() => queryAuditLog(log, { port: 0 }), /query\.port must be an integer from 1 to 65535, got 0/],
      [() => queryAuditLog(log, { kinds: ["flow" as never] }), /query\.kinds\[\] must be one of "connection", .*, got "flow"/],
      [() => queryAuditLog(log, { since: "1h" as never }), /query\.since must be a valid Date, got "1h"/],
      [() => queryAuditLog(log, { remote: 10 as never }), /query\.remote must be a string, got 10/],
      [() => summarizeAuditLog(log, { top: -1 }), /audit summary: options\.top must be an integer ≥ 0, got -1/],
      [() => log.append("records" as never), /write audit log: records must be an array/],
      [() => log.append([{ ...emptyAuditRecord("connection", new Date()), end: "now" as never }]), /write audit log: records\[\]\.end must be a valid Date, got "now"/],
      [() => log.store([42] as never), /write audit log: records\[\] must be an object, got 42/],
      [() => log.rows(-1), /read audit rows: after must be an integer ≥ 0, got -1/],
      [() => log.removeThrough("9" as never), /remove audit records: sequence must be an integer ≥ 0, got "9"/],
      [() => untyped(zeekConnHeader, "today"), /Zeek conn\.log header: opened must be a valid Date, got "today"/],
      [() => untyped(zeekConnLine, { kind: "udp" }), /Zeek conn\.log line: record\.start must be a valid Date, got undefined/],
      [() => untyped(parseDnsMessage, "query"), /parse DNS message: data must be a Buffer or Uint8Array, got "query"/],
      [() => compileFlowFilter("tcp", { directions: "both" as never }), /compile flow filter: options\.directions must be one of "originator", "either", got "both"/],
    ];
    for (const [call, pattern] of cases) assert.throws(call, (error: unknown) => error instanceof UsageError && pattern.test(error.message), pattern.source);
    assert.deepEqual(queryAuditLog(log, { port: 443, kinds: ["connection"] }), []);
    // A batch with a bad record is not stored in part.
    assert.throws(() => log.append([emptyAuditRecord("dns", new Date()), {} as never]), /records\[\]\.kind must be one of/);
    assert.equal(log.count, 0);
    assert.equal(log.lastSequence, 0);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("audit query --kind names an unknown kind as the option", () => {
  const result = runCli(["audit", "query", "--db", "/nonexistent/audit.db", "--kind", "flow"]);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /^netbpf: option --kind: unknown record kind "flow" \(kinds: connection, listen, udp, dns, drop, loss, alert\)\n$/);
});
