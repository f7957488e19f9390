/**
 * FTP, SMTP, WHOIS, HTTP and RTSP over TCP, and SIP over UDP, in the
 * summaries, compared with `tcpdump -n -t` line by line in default, -v, -q,
 * -x, -A and -v -X modes:
 * requests with random methods (in any case), URIs, versions and headers,
 * responses, command and reply lines, binary bytes, lines without CRLF, long
 * words, garbage, some cut by the snap length, both directions, IPv4 and
 * IPv6; which ports tcpdump prints each protocol for, over every port on the
 * other side; and crafted cases.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LinkType } from "../../src/pcap/link-type.js";
import { PacketSummarizer, type SummaryOptions } from "../../src/capture/packet-summary.js";
import { skipUnlessKernel } from "../support/kernel.js";
import type { CapturedPacket } from "../support/pcap-writer.js";
import { concat, ethernet, ipv4, ipv6, tcp, TCP, udp, withTransportChecksum, type Bytes } from "../support/packet-builder.js";
import { seededRandom } from "../support/seeded-random.js";
import { assertSameAsTcpdump, printerChoicesDiffering, tcpdumpAvailable } from "./tcpdump-comparison.js";

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const integer = (random: Random, below: number) => Math.floor(random() * below);
const randomBytes = (random: Random, count: number) => Uint8Array.from({ length: count }, () => integer(random, 256));
const text = (value: string) => Uint8Array.from(value, (c) => c.charCodeAt(0));

const methods = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "CONNECT", "PROPFIND", "MKWORKSPACE", "CCM_POST", "RPC_CONNECT",
  "VERSION-CONTROL", "BASELINE-CONTROL", "DESCRIBE", "SETUP", "PLAY", "TEARDOWN", "GET_PARAMETER", "PATCH", "BREW", "GETX", "GE", "USER",
  "PASS", "EHLO", "MAIL", "QUIT", "RETR", "INVITE", "REGISTER", "ACK", "BYE", "PRACK", "PUBLISH"];
const headerNames = ["Host", "User-Agent", "Accept", "Content-Length", "Connection", "CSeq", "Transport", "Session", "X-Forwarded-For"];

/** Printable text with now and then a tab, several spaces, or a byte tcpdump does not print. */
function printable(random: Random, count: number): string {
  let value = "";
  for (let i = 0; i < count; i++) {
    const roll = random();
    value += roll < 0.02 ? "\t" : roll < 0.04 ? "  " : roll < 0.05 ? pick(random, ["\u0000", "\u007f", "\u00e9", "\r", "\u001b"]) : String.fromCharCode(0x21 + integer(random, 94));
  }
  return value;
}

function lineEnd(random: Random): string {
  const roll = random();
  return roll < 0.8 ? "\r\n" : roll < 0.95 ? "\n" : pick(random, ["\r", "\rx", ""]);
}

function firstLine(random: Random): string {
  const method = pick(random, methods);
  switch (integer(random, 9)) {
    case 0: return `${pick(random, ["HTTP/1.1", "HTTP/1.0", "RTSP/1.0", "SIP/2.0"])} ${pick(random, ["200", "404", "301", "20", "2000", "abc", "999"])} ${pick(random, ["OK", "Not Found", "", "Moved Permanently"])}`;
    case 1: return `${pick(random, ["220", "331", "250-mx.example.com", "550"])} ${printable(random, integer(random, 30))}`;
    case 2: return `${random() < 0.5 ? method.toLowerCase() : method}${pick(random, [" ", "\t", "   ", ""])}/${printable(random, integer(random, 40))} HTTP/1.1`;
    case 3: return `${"A".repeat(120 + integer(random, 16))} ${pick(random, ["200", "GET"])} x`;
    case 4: return `${pick(random, [" ", "\t", ""])}${method} /x HTTP/1.0`;
    case 5: return printable(random, integer(random, 60));
    default: return `${method} ${pick(random, ["/", "/index.html", "rtsp://example.com/media.mp4", "*", "http://example.com:8080/a?b=c"])}${printable(random, integer(random, 20))} ${pick(random, ["HTTP/1.1", "HTTP/1.0", "RTSP/1.0", "HTTP/2"])}`;
  }
}

function message(random: Random): Bytes {
  if (random() < 0.08) return randomBytes(random, 1 + integer(random, 80));
  let value = firstLine(random) + lineEnd(random);
  for (let i = integer(random, 6); i > 0; i--) value += `${pick(random, headerNames)}: ${printable(random, integer(random, 40))}${lineEnd(random)}`;
  if (random() < 0.7) value += "\r\n";
  const body = integer(random, 4);
  return concat(text(value), body === 0 ? randomBytes(random, integer(random, 40)) : body === 1 ? text(printable(random, integer(random, 40))) : new Uint8Array(0));
}

const textPorts = [21, 25, 43, 80, 8080, 554, 8554];

function textProtocolPackets(seed: number, count: number): CapturedPacket[] {
  const random = seededRandom(seed);
  const packets: CapturedPacket[] = [];
  for (let i = 0; i < count; i++) {
    const payload = message(random);
    const port = random() < 0.7 ? pick(random, [80, 8080, 80, 554, 8554]) : pick(random, textPorts);
    // Ports of no printer, DNS's (tried after these), and other text protocols' (one of the two printed).
    const other = random() < 0.2 ? pick(random, [53, 2049, 5060, ...textPorts]) : 1024 + integer(random, 64000);
    const [sourcePort, destinationPort] = random() < 0.5 ? [other, port] : [port, other];
    const flags = random() < 0.05 ? TCP.rst | TCP.ack : random() < 0.05 ? TCP.syn : TCP.push | TCP.ack;
    // SIP over UDP, to or from 5060 (ports tried before it are in the sweep below; syslog comes after it).
    const sip = random() < 0.15;
    const sipOther = random() < 0.2 ? pick(random, [514, 5060, 5061]) : 1024 + integer(random, 64000);
    const segment = !sip ? tcp(sourcePort, destinationPort, flags, payload) : random() < 0.5 ? udp(sipOther, 5060, payload) : udp(5060, sipOther, payload);
    const overIpv6 = random() < 0.4;
    const protocol = sip ? 17 : 6;
    const packet = overIpv6
      ? ipv6(protocol, segment, { source: "2001:db8::1", destination: "2001:db8::80" })
      : ipv4(protocol, segment, { source: "192.0.2.1", destination: "198.51.100.80" });
    const frame = ethernet(overIpv6 ? 0x86dd : 0x0800, withTransportChecksum(packet));
    const captured = random() < 0.2 ? frame.subarray(0, frame.length - 1 - integer(random, Math.min(frame.length - 14, payload.length + 30))) : frame;
    packets.push({ data: captured, length: frame.length, seconds: 1_700_000_000 + i });
  }
  return packets;
}

const modes: { flags: string[]; options: SummaryOptions }[] = [
  { flags: [], options: {} },
  { flags: ["-v"], options: { verbose: true } },
  { flags: ["-q"], options: { quiet: true } },
  { flags: ["-x"], options: { hexDump: "hex" } },
  { flags: ["-A"], options: { hexDump: "ascii" } },
  { flags: ["-v", "-X"], options: { verbose: true, hexDump: "hex-ascii" } },
];

test("text protocol summaries match tcpdump -n line by line in each mode on generated HTTP, RTSP, FTP, SMTP, WHOIS and SIP messages", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const { text: output, verbose } = assertSameAsTcpdump(textProtocolPackets(20261206, 6000), "text-protocol", LinkType.ETHERNET, modes);
  for (const mark of [": HTTP: GET ", ": HTTP: get ", ": HTTP: HTTP/1.1 200 ", ": RTSP: RTSP/1.0 ", ": RTSP: DESCRIBE ", ": FTP: 220 ", ": SMTP: ", ": WHOIS: ",
    ": HTTP\n", " [|http]\n", " [|rtsp]\n", "\t/", ".5060: SIP: INVITE ", ": SIP: SIP/2.0 200 "]) {
    assert.ok(output.includes(mark), `no tcpdump line with ${JSON.stringify(mark)}`);
  }
  for (const mark of [": HTTP, length: ", "\n\tHost: ", "\n\t\n", "\n\tCSeq: ", " [|http]\n", ": RTSP\n"]) {
    assert.ok(verbose.includes(mark), `no tcpdump -v line with ${JSON.stringify(mark)}`);
  }
});

test("text protocols: tcpdump's choice of printer by port, for every port on the other side of each (TCP; SIP over UDP)", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const payload = text("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
  const sipPayload = text("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\n\r\n");
  const label = (line: string) => /(?:length \d+|^IP \S+ > \S+): (HTTP|RTSP|FTP|SMTP|WHOIS|SIP)\b/.exec(line)?.[1] ?? "";
  const directory = mkdtempSync(join(tmpdir(), "nb-text-protocol-ports-"));
  try {
    for (const known of [80, 8080, 554, 21, 43, 5060]) {
      const pairs: [number, number][] = [];
      for (let port = 0; port < 65536; port++) pairs.push([port, known], [known, port]);
      const packets = pairs.map(([source, destination]) => ({
        data: ethernet(0x0800, known === 5060 ? ipv4(17, udp(source, destination, sipPayload)) : ipv4(6, tcp(source, destination, TCP.push | TCP.ack, payload))),
      }));
      const path = join(directory, `ports-${known}.pcap`);
      const { theirs, differing } = printerChoicesDiffering(packets, path, label);
      assert.deepEqual(differing.map((index) => `${pairs[index]![0]} > ${pairs[index]![1]}: ${theirs[index]}`), []);
      // The sweep reaches printers tried first (BGP, OpenFlow, Redis …) and text protocols on both sides.
      if (known === 5060) {
        for (const mark of [".5060 > 10.0.0.2.161: ", ".5060 > 10.0.0.2.514: SIP: ", ".5060 > 10.0.0.2.1985: HSRP"]) {
          assert.ok(theirs.some((line) => line.includes(mark)), `no tcpdump line with ${JSON.stringify(mark)}`);
        }
      }
      if (known === 80) {
        for (const mark of [".179 > 10.0.0.2.80: ", ".6633 > 10.0.0.2.80: ", ": HTTP: GET /", ": FTP: GET /", ": SMTP: GET /", ": WHOIS: GET /"]) {
          assert.ok(theirs.some((line) => line.includes(mark)), `no tcpdump line with ${JSON.stringify(mark)}`);
        }
      }
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("text protocols: requests, responses and other text at default and -v verbosity, -q, cuts, port precedence, SIP over UDP", () => {
  const packet = (payload: string, sourcePort = 40000, destinationPort = 80, flags = TCP.push | TCP.ack) =>
    ({ data: ipv4(6, tcp(sourcePort, destinationPort, flags, text(payload))), timestamp: 0n, linkType: LinkType.RAW });
  const line = (payload: string, options: object = {}, sourcePort?: number, destinationPort?: number, flags?: number) =>
    new PacketSummarizer({ timestampFormat: "none", ...options }).summarize(packet(payload, sourcePort, destinationPort, flags)).replace(/^IP .*?, length /, "");
  const request = "GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\nbody";
  assert.equal(line(request), "51: HTTP: GET /index.html HTTP/1.1");
  assert.equal(line(request, { quiet: true }), "IP 10.0.0.1.40000 > 10.0.0.2.80: tcp 51");
  assert.equal(line(request, { verbose: true }).split("\n").slice(1).join("\n").replace(/^.*, length 51: /, ""),
    "HTTP, length: 51\n\tGET /index.html HTTP/1.1\n\tHost: example.com\n\t\n\tbody [|http]");
  assert.equal(line("HTTP/1.0 404 Not Found\n", {}, 80, 40000), "23: HTTP: HTTP/1.0 404 Not Found");
  assert.equal(line("propfind /x\r\n"), "13: HTTP: propfind /x");
  // Not a request nor a response: the name only, also with -v.
  for (const other of ["PATCH / HTTP/1.1\r\n", "HTTP/1.1 2000 OK\r\n", " GET / HTTP/1.1\r\n", `${"G".repeat(129)} 200\r\n`]) {
    assert.equal(line(other), `${other.length}: HTTP`);
    assert.match(line(other, { verbose: true }), /: HTTP$/);
  }
  assert.equal(line(`${"G".repeat(128)} 200\r\n`), `134: HTTP: ${"G".repeat(128)} 200`);
  // A byte that is not printable ASCII, or a CR without LF, ends the text; FTP and SMTP print any first line.
  assert.equal(line("GET /\u00e9 HTTP/1.1\r\n"), "17: HTTP");
  assert.ok(line("GET /a\rb\r\n", { verbose: true }).endsWith(", length 10: HTTP, length: 10"));
  assert.equal(line("hello\tthere\r\n", {}, 21, 40000), "13: FTP: hello\tthere");
  assert.equal(line("no line end", {}, 40000, 25), "11: SMTP: no line end [|smtp]");
  assert.equal(line("DESCRIBE rtsp://x RTSP/1.0\r\n", {}, 8554, 40000), "28: RTSP: DESCRIBE rtsp://x RTSP/1.0");
  // Telnet, SMTP, WHOIS, BGP … FTP are tried before HTTP, HTTP before RTSP and DNS; nothing for a segment without data.
  assert.equal(line(request, {}, 25, 80), "51: SMTP: GET /index.html HTTP/1.1");
  assert.equal(line(request, {}, 80, 21), "51: FTP: GET /index.html HTTP/1.1");
  assert.equal(line(request, {}, 554, 8080), "51: HTTP: GET /index.html HTTP/1.1");
  assert.equal(line(request, {}, 53, 80), "51: HTTP: GET /index.html HTTP/1.1");
  for (const port of [22, 23, 179, 6379, 10288]) assert.equal(line(request, {}, port, 80), "51");
  assert.equal(line("", {}, 40000, 80, TCP.syn), "0");
  // SIP over UDP 5060, before syslog; SNMP's printer comes before it.
  const datagram = (payload: string, sourcePort: number, destinationPort: number, options: object = {}) =>
    new PacketSummarizer({ timestampFormat: "none", ...options }).summarize({ data: ipv4(17, udp(sourcePort, destinationPort, text(payload))), timestamp: 0n, linkType: LinkType.RAW });
  assert.equal(datagram("INVITE sip:bob@example.com SIP/2.0\r\n", 514, 5060), "IP 10.0.0.1.514 > 10.0.0.2.5060: SIP: INVITE sip:bob@example.com SIP/2.0");
  assert.equal(datagram("SIP/2.0 180 Ringing\r\nTo: bob\r\n", 5060, 40000, { verbose: true }).split("\n").slice(1).join("\n"),
    "    10.0.0.1.5060 > 10.0.0.2.40000: SIP, length: 30\n\tSIP/2.0 180 Ringing\n\tTo: bob");
  assert.equal(datagram("INVITE x\r\n", 161, 5060), "IP 10.0.0.1.161 > 10.0.0.2.5060: UDP, length 10");
  // A cut inside a line: tcpdump unwinds, and -x dumps the frame from its first byte.
  const frame = ethernet(0x0800, ipv4(6, tcp(40000, 80, TCP.push | TCP.ack, text("GET / HTTP/1.1\r\n"))));
  const cut = { data: frame.subarray(0, frame.length - 1), originalLength: frame.length, timestamp: 0n, linkType: LinkType.ETHERNET };
  assert.match(new PacketSummarizer({ timestampFormat: "none" }).summarize(cut), /, length 16: HTTP \[\|http\]$/);
  assert.equal(new PacketSummarizer({ timestampFormat: "none", hexDump: "hex" }).summarize(cut).split("\n")[1], "\t0x0000:  0200 0000 0002 0200 0000 0001 0800 4500");
});
