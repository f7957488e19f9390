import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileCaptureFilter, offlineTestRunContext, offlineUndecided } from "../../src/capture/capture-filter.js";
import { Program, ProgramType } from "../../src/index.js";
import { Interpreter } from "../../src/asm/interpreter.js";
import { cliPath } from "../support/cli.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { concat, ethernet, ipv4, ipv6, ipv6Extension, linuxSll, tcp, TCP, udp } from "../support/packet-builder.js";
import { writePcap, type CapturedPacket } from "../support/pcap-writer.js";
import { numbered } from "../filter/generate-filter-fixtures.js";
import { readCaptureFile } from "../../src/pcap/capture-file.js";
import { probeTcx } from "../../src/features/features.js";
import { Testbed } from "../support/testbed.js";
import { finished, listening } from "../support/capture-process.js";
import { udpSendScript } from "./udp-send-script.js";

const tcpdumpAvailable = spawnSync("tcpdump", ["--version"]).status === 0;

/** The packets a command printed, by their timestamps (packet i has timestamp i seconds): what it selected. */
function selected(stdout: string): string[] {
  return stdout.split("\n").filter((line) => line !== "").map((line) => line.split(" ")[0]!);
}

function run(command: string, args: string[]) {
  const result = spawnSync(command, args, { encoding: "utf8", env: { ...process.env, TZ: "UTC" }, timeout: 60_000, killSignal: "SIGKILL" });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Packets of many wire lengths, every one cut to `snap` bytes as a small snap length cuts them. */
function truncatedPackets(snap: number, wrap: (type: number, payload: Uint8Array) => Uint8Array): CapturedPacket[] {
  const packets: CapturedPacket[] = [];
  for (const payload of [0, 10, 26, 40, 46, 60, 100, 200, 1000, 1400]) {
    for (const frame of [
      wrap(0x0800, ipv4(17, udp(1000, 53, new Uint8Array(payload)))),
      wrap(0x86dd, ipv6(6, tcp(1000, 80, TCP.syn, new Uint8Array(payload)))),
    ]) packets.push({ data: frame.slice(0, snap), length: frame.length });
  }
  return numbered(packets);
}

/** IPv6 with `count` destination-options headers before UDP (libpcap's ipv6_ext_headers test has 100). */
function extensionChain(count: number): Uint8Array {
  const headers = Array.from({ length: count }, (_, i) => ipv6Extension(i === count - 1 ? 17 : 60));
  return ethernet(0x86dd, ipv6(count === 0 ? 17 : 60, concat(...headers, udp(1000, 53))));
}

const lengthExpressions = ["greater 100", "less 100", "len <= 74", "len = 82", "greater 1000 and udp", "len - 14 > 1000"];

test("offline -r: len, greater and less compare the original length of truncated records, in the kernel and in the interpreter, as tcpdump -r", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const directory = mkdtempSync(join(tmpdir(), "nb-nbf1-offline-"));
  try {
    let compared = 0;
    for (const snap of [14, 60]) {
      // Ethernet runs in the kernel (BPF_PROG_TEST_RUN; it refuses frames shorter than their IP header), Linux cooked in the interpreter.
      for (const [linkType, wrap] of [[1, (type: number, payload: Uint8Array) => ethernet(type, payload)], [113, (type: number, payload: Uint8Array) => linuxSll(0, type, payload)]] as const) {
        const file = join(directory, `snap${snap}-${linkType}.pcap`);
        writeFileSync(file, writePcap(linkType, truncatedPackets(snap, wrap), snap));
        for (const expression of lengthExpressions) {
          const ours = run(process.execPath, [cliPath, "capture", "-r", file, "-n", expression]);
          const theirs = run("tcpdump", ["-r", file, "-n", expression]);
          assert.equal(ours.status, 0, ours.stderr);
          assert.deepEqual(selected(ours.stdout), selected(theirs.stdout), `snap ${snap}, link type ${linkType}: ${expression}`);
          assert.ok(theirs.stdout.length > 0 || expression.startsWith("len = ") || snap < 34, `tcpdump selected nothing for ${expression}: the capture does not test it`);
          if (linkType === 1 && snap >= 60 && isRoot()) assert.doesNotMatch(ours.stderr, /interpreter/, "root runs the filter in the kernel");
          compared++;
        }
      }
    }
    assert.equal(compared, 2 * 2 * lengthExpressions.length);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("the offline kernel program reads the original length from the test-run context", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  const filter = compileCaptureFilter("greater 500", 1);
  using program = Program.load({ type: ProgramType.SchedCls, instructions: filter.offlineProgram, name: "nbf1_len" });
  const frame = ethernet(0x0800, ipv4(17, udp(1, 2, new Uint8Array(600)))).slice(0, 60);
  assert.equal(program.run({ data: Buffer.from(frame), context: offlineTestRunContext(60, 642) }).returnValue, 1);
  assert.equal(program.run({ data: Buffer.from(frame), context: offlineTestRunContext(60, 400) }).returnValue, 0);
  assert.equal(program.run({ data: Buffer.from(frame), context: offlineTestRunContext(60, 60) }).returnValue, 0);
  assert.equal(offlineTestRunContext(60, 70000), undefined, "the kernel refuses wire lengths above 64 KiB: interpreter");
});

test("protochain follows IPv6 extension headers as far as libpcap (100 before UDP), in the kernel and in the interpreter", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const directory = mkdtempSync(join(tmpdir(), "nb-nbf1-chain-"));
  try {
    const counts = [0, 1, 2, 15, 16, 17, 40, 100, 150];
    const file = join(directory, "chain.pcap");
    writeFileSync(file, writePcap(1, numbered(counts.map((count) => ({ data: extensionChain(count) })))));
    for (const expression of ["ip6 protochain 17", "protochain 17", "ip6 protochain 60", "ip6 protochain 17 and not ip6 protochain 6", "protochain 6"]) {
      const ours = run(process.execPath, [cliPath, "capture", "-r", file, "-n", expression]);
      const theirs = run("tcpdump", ["-r", file, "-n", expression]);
      assert.equal(ours.status, 0, ours.stderr);
      assert.deepEqual(selected(ours.stdout), selected(theirs.stdout), expression);
    }
    assert.equal(run("tcpdump", ["-r", file, "-nn", "ip6 protochain 17"]).stdout.trim().split("\n").length, counts.length);
    const filter = compileCaptureFilter("ip6 protochain 17", 1);
    const interpreter = new Interpreter(filter.interpreterProgram.instructions);
    for (const count of counts) {
      const data = extensionChain(count);
      assert.equal(filter.matches({ data }), true, `evaluator, ${count} headers`);
      assert.equal(interpreter.run(data, { registers: { 3: data.length, 4: 0 } }).returnValue, 1n, `interpreter, ${count} headers`);
    }
    if (isRoot()) {
      using program = Program.load({ type: ProgramType.SchedCls, instructions: filter.offlineProgram, name: "nbf1_chain" });
      const kernel = (count: number) => program.run({ data: Buffer.from(extensionChain(count)), context: offlineTestRunContext(extensionChain(count).length, extensionChain(count).length) }).returnValue;
      for (const count of counts) assert.equal(kernel(count), 1, `kernel, ${count} headers (never undecided: ${offlineUndecided})`);
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("offline -r -w writes a header-only capture when nothing matches, as tcpdump does", (t) => {
  if (skipUnlessKernel(t, tcpdumpAvailable, "tcpdump is not installed")) return;
  const directory = mkdtempSync(join(tmpdir(), "nb-nbf1-empty-"));
  try {
    const input = join(directory, "in.pcap");
    writeFileSync(input, writePcap(1, truncatedPackets(64, (type, payload) => ethernet(type, payload)), 64));
    for (const [name, format] of [["out.pcap", "pcap"], ["out.pcapng", "pcapng"]]) {
      const output = join(directory, name!);
      const ours = run(process.execPath, [cliPath, "capture", "-r", input, "-w", output, "icmp"]);
      assert.equal(ours.status, 0, ours.stderr);
      const bytes = readFileSync(output);
      assert.ok(bytes.length > 0, `${format}: an empty file`);
      const read = run("tcpdump", ["-r", output, "-n"]);
      assert.equal(read.status, 0, `${format}: tcpdump cannot read it: ${read.stderr}`);
      assert.equal(read.stdout, "");
      assert.match(read.stderr, /link-type EN10MB/);
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("live capture with -s: greater and len compare the length on the wire, not the snap length", async (t) => {
  if (skipUnlessKernel(t, isRoot() && probeTcx(), "needs root and tcx")) return;
  const bed = Testbed.create("nbf1", { disableIpv6: true });
  const directory = mkdtempSync(join(tmpdir(), "nb-nbf1-live-"));
  t.after(() => {
    bed.destroy();
    rmSync(directory, { recursive: true, force: true });
  });
  const output = join(directory, "live.pcap");
  // Datagrams of 100 and 900 bytes, cut to 60 by -s: only the large ones are greater than 500 on the wire.
  const payloads = ["small-1", "large-1", "small-2", "large-2"].map((name) => name.padEnd(name.startsWith("large") ? 900 : 100, "."));
  const child = bed.start(bed.a, [process.execPath, cliPath, "capture", "-i", bed.a.interface, "-s", "60", "-w", output, "-c", "2", "udp port 47123 and greater 500 and len > 900"], "nsenter");
  const result = finished(child);
  await listening(child);
  bed.node(bed.b, udpSendScript(bed.a.address, 47123, payloads));
  const { code, stderr } = await result;
  assert.equal(code, 0, stderr);
  const capture = readCaptureFile(output);
  assert.equal(capture.packets.length, 2);
  for (const packet of capture.packets) {
    assert.equal(packet.data.length, 60, "cut to the snap length");
    assert.equal(packet.originalLength, 14 + 20 + 8 + 900, "the wire length is kept");
  }
});

test("OfflineFilter.matches and matchesBytes refuse what is not a packet, naming the argument", async () => {
  const { OfflineFilter } = await import("../../src/capture/offline-filter.js");
  const { UsageError } = await import("../../src/sys/errors.js");
  using filter = new OfflineFilter(compileCaptureFilter("udp", 1));
  const refused = (pattern: RegExp) => (error: Error) => error instanceof UsageError && pattern.test(error.message);
  const frame = Buffer.from(ethernet(0x0800, ipv4(17, udp(1, 2))));
  assert.throws(() => filter.matches(undefined as never), refused(/packet must be a packet \(data and originalLength\), got undefined/));
  assert.throws(() => filter.matches({ data: "x" } as never), refused(/packet\.data must be a Buffer or Uint8Array, got "x"/));
  assert.throws(() => filter.matches({ data: frame } as never), refused(/packet\.originalLength must be an integer from 0 to 4294967295, got undefined/));
  assert.throws(() => filter.matchesBytes(42 as never, 0, 0, 0), refused(/buffer must be a Uint8Array \(or Buffer\), got 42/));
  assert.throws(() => filter.matchesBytes(frame, 1, frame.length, frame.length), refused(/is outside the \d+-byte buffer/));
  assert.throws(() => filter.matchesBytes(frame, 0, frame.length, -1), refused(/originalLength must be an integer from 0 to 4294967295, got -1/));
  assert.equal(filter.matches({ data: frame, originalLength: frame.length } as never), true);
  assert.equal(filter.matchesBytes(Buffer.concat([Buffer.alloc(3), frame]), 3, frame.length, frame.length), true);
});
