/**
 * protochain in kernel code walks IPv6 extension headers as far as libpcap:
 * chains of 1 to 120 headers (libpcap's ipv6_ext_headers capture has 100),
 * mixed header types, AH with libpcap's offset quirk, truncated chains.
 * The packets go through `tcpdump -r` and through the generated programs
 * loaded in the kernel (tc direct, tc with bpf_skb_load_bytes, a subprogram,
 * XDP; socket filters are loaded), run with BPF_PROG_TEST_RUN.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Assembler, R1, R2 } from "../../src/asm/assembler.js";
import { Interpreter } from "../../src/asm/interpreter.js";
import { compileFilter } from "../../src/filter/compile-filter.js";
import { generateFilterProgram, generateFilterSubprogram } from "../../src/filter/generate-filter-program.js";
import { Program, ProgramType } from "../../src/index.js";
import { isRoot, skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";
import { authenticationHeader, concat, ethernet, ipv6, ipv6Extension, ipv6Fragment, tcp, TCP, u8, udp, type Bytes } from "../support/packet-builder.js";
import { writePcap } from "../support/pcap-writer.js";
import { numbered } from "./generate-filter-fixtures.js";
import { Testbed } from "../support/testbed.js";
import { cliPath } from "../support/cli.js";
import { finished, listening } from "../support/capture-process.js";
import { probeTcx } from "../../src/features/features.js";
import { readCaptureFile } from "../../src/pcap/capture-file.js";
import { interfaceIndex } from "../../src/sys/socket.js";
import { tcpdumpAvailable, tcpdumpSelect } from "./tcpdump-oracle.js";

/** IPv6 with `count` destination-options headers (each `8 * (extra + 1)` bytes) before `last` (UDP by default). */
function chain(count: number, extra = 0, last = 17, payload: Bytes = udp(1000, 53)): Bytes {
  const headers = Array.from({ length: count }, (_, i) => ipv6Extension(i === count - 1 ? last : 60, extra));
  return ethernet(0x86dd, ipv6(count === 0 ? last : 60, concat(...headers, payload)));
}

/** Hop-by-hop, then routing, fragment and destination options repeated, then TCP. */
function mixedChain(count: number): Bytes {
  const types = [0, ...Array.from({ length: count - 1 }, (_, i) => [43, 44, 60][i % 3]!)];
  const headers = types.map((type, i) => {
    const next = i === types.length - 1 ? 6 : types[i + 1]!;
    return type === 44 ? ipv6Fragment(next, 0, false) : ipv6Extension(next, i % 2);
  });
  return ethernet(0x86dd, ipv6(types[0]!, concat(...headers, tcp(1000, 80, TCP.syn))));
}

/** The cases compared: chain lengths from the issue plus the corners of libpcap's loop. */
function packets(): { name: string; data: Bytes }[] {
  const cases: { name: string; data: Bytes }[] = [];
  for (const count of [0, 1, 16, 17, 50, 100, 120]) cases.push({ name: `${count} headers`, data: chain(count) });
  cases.push({ name: "120 headers of 16 bytes", data: chain(120, 1) });
  cases.push({ name: "mixed 60 headers to TCP", data: mixedChain(60) });
  cases.push({ name: "100 headers to no-next-header", data: chain(100, 0, 59, new Uint8Array(8)) });
  // AH after the IPv6 header: libpcap takes its length as the new offset from the IPv6 header (a quirk), here 24.
  cases.push({ name: "AH then UDP", data: ethernet(0x86dd, ipv6(51, concat(authenticationHeader(17), udp(1, 2)))) });
  cases.push({ name: "30 headers, AH, 30 headers", data: ethernet(0x86dd, ipv6(60, concat(...Array.from({ length: 30 }, () => ipv6Extension(60)).slice(0, 29), ipv6Extension(51), authenticationHeader(60), ...Array.from({ length: 30 }, (_, i) => ipv6Extension(i === 29 ? 6 : 60)), tcp(1, 2, TCP.ack)))) });
  // The last header names UDP but its length points past the end: libpcap matches without loading there.
  const pastEnd = chain(20);
  pastEnd[14 + 40 + 19 * 8 + 1] = 255;
  cases.push({ name: "last length past the end", data: pastEnd });
  // Truncated: the chain ends inside a header (the load fails: reject), or right after one.
  cases.push({ name: "100 headers cut at 500 bytes", data: chain(100).slice(0, 500) });
  cases.push({ name: "17 headers cut inside the 17th", data: chain(17).slice(0, 14 + 40 + 16 * 8 + 1) });
  cases.push({ name: "50 headers cut after the 50th", data: chain(50).slice(0, 14 + 40 + 50 * 8) });
  return cases;
}

const expressions = ["ip6 protochain 17", "protochain 6", "ip6 protochain 60", "ip6 protochain 44", "ip6 protochain 59", "not ip6 protochain 17", "ip6 protochain 17 or ip6 protochain 6", "ip6 protochain 51"];

test("protochain in tc, XDP and subprogram code selects what tcpdump -r selects on chains of up to 120 extension headers", async (t) => {
  if (skipUnlessTool(t, await tcpdumpAvailable(), "tcpdump is not installed")) return;
  if (skipUnlessKernel(t, isRoot(), "loading BPF programs needs root")) return;
  const cases = packets();
  const directory = mkdtempSync(join(tmpdir(), "nbpc-protochain-"));
  try {
    const file = join(directory, "chains.pcap");
    writeFileSync(file, writePcap(1, numbered(cases.map(({ data }) => ({ data })))));
    let compared = 0;
    let matched = 0;
    for (const expression of expressions) {
      const selected = await tcpdumpSelect(file, expression);
      assert.notEqual(selected, "error", expression);
      const expected = cases.map((_, index) => (selected as number[]).includes(index));
      const filter = compileFilter(expression, { linkType: 1 });
      const interpreter = new Interpreter(generateFilterProgram(filter, { context: "skb", acceptValue: 1, rejectValue: 0, prologue: "interpreter" }).instructions);
      const subprogram = generateFilterSubprogram(filter, { context: "skb", labelPrefix: "nbpc_", acceptValue: 1, rejectValue: 0 });
      const programs = [
        { name: "tc", type: ProgramType.SchedCls, instructions: generateFilterProgram(filter, { context: "skb", hook: "tc", acceptValue: 1, rejectValue: 0 }).instructions, accept: 1 },
        { name: "tc helper", type: ProgramType.SchedCls, instructions: generateFilterProgram(filter, { context: "skb", skbLoads: "helper", acceptValue: 1, rejectValue: 0 }).instructions, accept: 1 },
        { name: "tc subprogram", type: ProgramType.SchedCls, instructions: new Assembler().callLocal(subprogram.entry).exit().append(subprogram.assembler).finish().instructions, accept: 1 },
        { name: "xdp", type: ProgramType.Xdp, instructions: generateFilterProgram(filter, { context: "xdp" }).instructions, accept: 2 },
      ];
      // Socket filters (LD_ABS code): the verifier must take the loop too.
      using socket = Program.load({ type: ProgramType.SocketFilter, instructions: generateFilterProgram(filter, { context: "skb", hook: "socket" }).instructions, license: "GPL", name: "nbpc_chain_sk" });
      assert.ok(socket.fd.value >= 0);
      for (const { name, type, instructions, accept } of programs) {
        using program = Program.load({ type, instructions, license: "GPL", name: "nbpc_chain" });
        cases.forEach(({ name: packet, data }, index) => {
          const returned = program.run({ data: Buffer.from(data) }).returnValue;
          assert.equal(returned === accept, expected[index], `${name}, ${expression}: ${packet}`);
          compared++;
        });
      }
      cases.forEach(({ name: packet, data }, index) => {
        assert.equal(filter.matches({ data, length: data.length }), expected[index], `evaluator, ${expression}: ${packet}`);
        assert.equal(interpreter.run(data, { registers: { 3: data.length, 4: 0 } }).returnValue === 1n, expected[index], `interpreter, ${expression}: ${packet}`);
        if (expected[index]) matched++;
      });
    }
    // The 100- and 120-header chains match `ip6 protochain 17` (past the old 16-header limit).
    assert.ok(cases.every(({ name }, index) => !/^(100|120) headers$/.test(name) || compileFilter("ip6 protochain 17", { linkType: 1 }).matches({ data: cases[index]!.data, length: cases[index]!.data.length })));
    assert.equal(compared, expressions.length * cases.length * 4);
    assert.ok(matched > 20, `tcpdump selected only ${matched} (expression, packet) pairs: the cases test little`);
    t.diagnostic(`${compared} kernel decisions compared with tcpdump -r (${expressions.length} expressions × ${cases.length} packets × 4 programs)`);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("an AH header pointing at itself (libpcap loops forever) ends the walk as a load past the end: reject, in the kernel and in user space", (t) => {
  if (skipUnlessKernel(t, isRoot(), "loading BPF programs needs root")) return;
  // AH at offset 40 with length 8: (8 + 2) * 4 = 40, the same header again.
  const data = ethernet(0x86dd, ipv6(51, concat(u8(51, 8), new Uint8Array(38), udp(1, 2))));
  for (const expression of ["ip6 protochain 17", "not ip6 protochain 17"]) {
    const filter = compileFilter(expression, { linkType: 1 });
    assert.equal(filter.matches({ data, length: data.length }), false, `evaluator: ${expression}`);
    const interpreter = new Interpreter(generateFilterProgram(filter, { context: "skb", acceptValue: 1, rejectValue: 0, prologue: "interpreter" }).instructions);
    assert.equal(interpreter.run(data, { registers: { 3: data.length, 4: 0 } }).returnValue, 0n, `interpreter: ${expression}`);
    using tc = Program.load({ type: ProgramType.SchedCls, instructions: generateFilterProgram(filter, { context: "skb", hook: "tc", acceptValue: 1, rejectValue: 0 }).instructions, license: "GPL", name: "nbpc_ah_loop" });
    assert.equal(tc.run({ data: Buffer.from(data) }).returnValue, 0, `tc: ${expression}`);
    using xdp = Program.load({ type: ProgramType.Xdp, instructions: generateFilterProgram(filter, { context: "xdp" }).instructions, license: "GPL", name: "nbpc_ah_loop" });
    assert.equal(xdp.run({ data: Buffer.from(data) }).returnValue, 1, `xdp drops (rejects): ${expression}`);
  }
});

test("live capture on a veth: `ip6 protochain 17` takes the 100- and 120-header chains tcpdump -r takes", async (t) => {
  if (skipUnlessTool(t, await tcpdumpAvailable(), "tcpdump is not installed")) return;
  if (skipUnlessKernel(t, isRoot() && probeTcx(), "needs root and tcx")) return;
  const bed = Testbed.create("pc");
  const directory = mkdtempSync(join(tmpdir(), "nbpc-protochain-live-"));
  t.after(() => {
    bed.destroy();
    rmSync(directory, { recursive: true, force: true });
  });
  const frames = [chain(100), chain(50, 0, 6, tcp(1, 2, TCP.ack)), chain(120), mixedChain(60), chain(17), chain(100).slice(0, 500)];
  const sent = join(directory, "sent.pcap");
  writeFileSync(sent, writePcap(1, numbered(frames.map((data) => ({ data })))));
  const selected = await tcpdumpSelect(sent, "ip6 protochain 17");
  assert.deepEqual(selected, [0, 2, 4], "tcpdump -r takes the full UDP chains");
  // (Every frame fits the veth MTU.) The frames leave b as XDP frames (a live-frame test run redirecting them out of b's veth); with GRO on, a's veth builds skbs for tc.
  bed.exec(bed.a, ["ethtool", "-K", bed.a.interface, "gro", "on"]);
  const output = join(directory, "live.pcap");
  const child = bed.start(bed.a, [process.execPath, cliPath, "capture", "-i", bed.a.interface, "-w", output, "-c", "3", "ip6 protochain 17"], "nsenter");
  const result = finished(child);
  await listening(child);
  const index = bed.inNamespace(bed.b, () => interfaceIndex(bed.b.interface));
  using redirect = Program.load({ type: ProgramType.Xdp, instructions: new Assembler().mov64(R1, index).mov64(R2, 0).call("redirect").exit().finish(), license: "GPL", name: "nbpc_send" });
  bed.inNamespace(bed.b, () => {
    for (const data of frames) redirect.run({ data: Buffer.from(data), dataOutSize: 0, repeat: 1, flags: testXdpLiveFrames });
  });
  const { code, stderr } = await result;
  assert.equal(code, 0, stderr);
  const captured = readCaptureFile(output).packets.map((packet) => Buffer.from(packet.data));
  assert.deepEqual(captured, (selected as number[]).map((i) => Buffer.from(frames[i]!)));
});

/** BPF_PROG_TEST_RUN flag: frames an XDP program redirects are really sent. */
const testXdpLiveFrames = 1 << 1;
