/**
 * `capture -r FILE -w …` copies matching records of a classic pcap file as
 * they are (whole runs of consecutive ones at once) when the output encodes
 * them the same way, and re-encodes the others (another byte order or
 * resolution, records longer than the snap length, a fraction of a second
 * of a second or more). The output must be byte for byte what the general
 * reader gives (standard input: record by record) and what tcpdump writes,
 * on generated captures of every odd kind: both byte orders, nanosecond
 * files, packets cut by the snap length, records longer than the file's
 * snap length, truncated last records.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tcpdumpAvailable } from "../filter/tcpdump-oracle.js";
import { skipUnlessTool } from "../support/kernel.js";
import { cliPath } from "../support/cli.js";
import { ethernet, icmp, ipv4, ipv6, tcp, TCP, udp } from "../support/packet-builder.js";
import { seededRandom } from "../support/seeded-random.js";

interface Variant {
  name: string;
  big?: boolean;
  nanosecond?: boolean;
  /** The file header's snap length (records are cut to it, unless `overlong`). */
  snapLength?: number;
  /** Some records longer than the header's snap length. */
  overlong?: boolean;
  /** Some records with a fraction of a second of a second or more. */
  oddFractions?: boolean;
  /** Bytes cut off the end of the file (inside the last record). */
  cut?: number;
}

/** An Ethernet frame: IPv4 or IPv6, TCP or UDP or ICMP, a few addresses and ports, 0-1400 bytes of payload. */
function frame(random: () => number): Buffer {
  const pick = <T>(values: T[]): T => values[Math.floor(random() * values.length)]!;
  const payload = new Uint8Array(random() < 0.5 ? Math.floor(random() * 32) : Math.floor(random() * 1400));
  const ports = [22, 53, 80, 443, 40000 + Math.floor(random() * 50)];
  const choice = random();
  const protocol = choice < 0.6 ? 6 : choice < 0.95 ? 17 : 1;
  const transport = protocol === 6 ? tcp(pick(ports), pick(ports), pick([TCP.syn, TCP.syn | TCP.ack, TCP.ack, TCP.ack | TCP.push, TCP.fin | TCP.ack]), payload)
    : protocol === 17 ? udp(pick(ports), pick(ports), payload) : icmp(8, 0, payload);
  const host = () => 1 + Math.floor(random() * 3);
  const network = random() < 0.2
    ? ipv6(protocol === 1 ? 58 : protocol, transport, { source: `2001:db8::${host()}`, destination: `2001:db8::${host()}` })
    : ipv4(protocol, transport, { source: `10.0.0.${host()}`, destination: `10.0.0.${host()}` });
  return Buffer.from(ethernet(network[0]! >> 4 === 6 ? 0x86dd : 0x0800, network));
}

/** A classic pcap file of `count` generated frames, written field by field (odd records included, as the variant asks). */
function capture(variant: Variant, count: number, seed: number): Buffer {
  const random = seededRandom(seed);
  const big = variant.big === true;
  const u32 = (value: number) => {
    const bytes = Buffer.alloc(4);
    if (big) bytes.writeUInt32BE(value >>> 0);
    else bytes.writeUInt32LE(value >>> 0);
    return bytes;
  };
  const u16 = (value: number) => {
    const bytes = Buffer.alloc(2);
    if (big) bytes.writeUInt16BE(value);
    else bytes.writeUInt16LE(value);
    return bytes;
  };
  const snapLength = variant.snapLength ?? 262144;
  const parts: Buffer[] = [u32(variant.nanosecond ? 0xa1b23c4d : 0xa1b2c3d4), u16(2), u16(4), u32(0), u32(0), u32(snapLength), u32(1)];
  const unit = variant.nanosecond ? 1_000_000_000 : 1_000_000;
  for (let i = 0; i < count; i++) {
    const data = frame(random);
    const kept = variant.overlong && random() < 0.3 ? data.length : Math.min(data.length, snapLength);
    const fraction = variant.oddFractions && random() < 0.1 ? unit + Math.floor(random() * 3 * unit) : Math.floor(random() * unit);
    // A run of records in the same second, some with the wire length larger than the data (cut by the capturing side).
    const originalLength = data.length + (random() < 0.1 ? Math.floor(random() * 100) : 0);
    parts.push(u32(1_700_000_000 + Math.floor(i / 50)), u32(fraction), u32(kept), u32(originalLength), data.subarray(0, kept));
  }
  const bytes = Buffer.concat(parts);
  return variant.cut !== undefined ? bytes.subarray(0, bytes.length - variant.cut) : bytes;
}

function run(command: string, args: string[], input?: Buffer) {
  const result = spawnSync(command, args, { input, encoding: "buffer", env: { ...process.env, TZ: "UTC" }, timeout: 120_000, maxBuffer: 1 << 28 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr.toString() };
}

const variants: Variant[] = [
  { name: "little-endian microseconds" },
  { name: "big-endian", big: true },
  { name: "nanoseconds", nanosecond: true },
  { name: "snap length 200, records cut and some longer than it", snapLength: 200, overlong: true },
  { name: "fractions of a second past a second", oddFractions: true },
  { name: "truncated inside the last packet", cut: 5 },
  { name: "truncated inside the last record header", cut: 0 },
];

const optionSets = [["-w", "-"], ["-w", "-", "tcp"], ["-w", "-", "udp or port 80"], ["-w", "-", "-s", "90", "tcp"], ["-w", "-", "-c", "777", "tcp"], ["-n", "tcp"]];

test("capture -r: records copied as they are give the bytes of the record-by-record path and of tcpdump, on odd captures too", async (t) => {
  const haveTcpdump = await tcpdumpAvailable();
  if (skipUnlessTool(t, haveTcpdump, "tcpdump is not installed")) return;
  const directory = mkdtempSync(join(tmpdir(), "nbpf-pass-through-"));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  let copied = 0;
  for (const [index, variant] of variants.entries()) {
    // 3,000 packets: several 256 KiB reads and 64 KiB runs, and records across read boundaries.
    let bytes = capture(variant, 3000, 100 + index);
    // A header cut after 7 of its 16 bytes: a record of 9 bytes' data appended whole, then its next header cut.
    if (variant.name.includes("header")) bytes = Buffer.concat([bytes, Buffer.alloc(7, 1)]);
    const path = join(directory, `${index}.pcap`);
    writeFileSync(path, bytes);
    for (const options of optionSets) {
      const label = `${variant.name}, ${options.join(" ")}`;
      const fast = run(process.execPath, [cliPath, "capture", "-r", path, ...options]);
      const general = run(process.execPath, [cliPath, "capture", "-r", "-", ...options], bytes);
      // With -c the reading stops before the broken end.
      const truncated = variant.cut !== undefined && !options.includes("-c");
      assert.equal(fast.status, truncated ? 2 : 0, `${label}: ${fast.stderr}`);
      assert.equal(general.status, fast.status, `${label}: ${general.stderr}`);
      assert.ok(fast.stdout.length > 24, label);
      assert.ok(fast.stdout.equals(general.stdout), `${label}: the same bytes as record by record (${fast.stdout.length} vs ${general.stdout.length})`);
      if (truncated) assert.match(fast.stderr, /truncated/, label);
      // tcpdump keeps a fraction of a second as stored (netbpf writes the time normalised), and applies -s only to live captures.
      if (variant.oddFractions || options[0] !== "-w" || options.includes("-s")) continue;
      const tcpdump = run("tcpdump", ["-r", path, ...options]);
      assert.ok(fast.stdout.equals(tcpdump.stdout), `${label}: tcpdump's bytes (${fast.stdout.length} vs ${tcpdump.stdout.length})`);
      copied++;
    }
  }
  assert.ok(copied >= 20, `compared with tcpdump: ${copied}`);
});
