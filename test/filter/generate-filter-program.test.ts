import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Assembler, R0, R6 } from "../../src/asm/assembler.js";
import { Interpreter } from "../../src/asm/interpreter.js";
import { packetHelpers, socketBufferContext } from "../../src/asm/contexts.js";
import { Program } from "../../src/core/program.js";
import { SyscallError } from "../../src/sys/errors.js";
import { ProgramType } from "../../src/sys/bpf-constants.js";
import { compileFilter } from "../../src/filter/compile-filter.js";
import { generateFilterProgram, generateFilterSubprogram, type FilterContext } from "../../src/filter/generate-filter-program.js";
import { formatFilterProgram } from "../../src/filter/format-filter-program.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { readPcap } from "../support/pcap-writer.js";
import { selectionsAgree } from "./filter-expressions.js";
import { fixtureDirectory, type ExpectedResults } from "./generate-filter-fixtures.js";

const expected = JSON.parse(readFileSync(new URL("expected.json", fixtureDirectory), "utf8")) as ExpectedResults;
const captures = new Map(expected.files.map((file) => [file.name, readPcap(readFileSync(new URL(file.name, fixtureDirectory)))]));
const accepted = expected.cases.flatMap(({ expression, results }) =>
  Object.entries(results).filter(([, result]) => result !== "error").map(([file, result]) => ({ expression, file, want: result as number[] })));

for (const [context, hook] of [["skb", "socket"], ["skb", "tc"], ["xdp", undefined]] as [FilterContext, "socket" | "tc" | undefined][]) {
  const name = hook === "tc" ? "skb (tc, direct packet access)" : context;
  test(`${name} programs select what tcpdump selects (asm interpreter, every expression and capture)`, () => {
    const mismatches: string[] = [];
    for (const { expression, file, want } of accepted) {
      const capture = captures.get(file)!;
      const filter = compileFilter(expression, { linkType: capture.linkType });
      const program = generateFilterProgram(filter, { context, hook, prologue: "interpreter", acceptValue: 1, rejectValue: 0 });
      const interpreter = new Interpreter(program.instructions);
      const got: number[] = [];
      capture.packets.forEach((packet, index) => {
        const result = interpreter.run(packet.data, { registers: { 3: packet.length ?? packet.data.length, 4: 0 } });
        if (result.returnValue === 1n) got.push(index);
      });
      if (!selectionsAgree(expression, got, want, capture.packets)) mismatches.push(`${file}: ${expression}: tcpdump ${JSON.stringify(want)}, ${name} ${JSON.stringify(got)}`);
    }
    assert.ok(accepted.length > 1500);
    assert.deepEqual(mismatches, []);
  });
}

test("the kernel runs the generated programs with the evaluator's results (XDP and tc test runs)", (t) => {
  if (skipUnlessKernel(t, isRoot(), "loading BPF programs needs root")) return;
  const ethernetCases = accepted.filter(({ file }) => file === "crafted-ethernet.pcap" || file === "loopback-ethernet.pcap");
  const mismatches: string[] = [];
  let runs = 0;
  let skipped = 0;
  for (const { expression, file } of ethernetCases) {
    const capture = captures.get(file)!;
    const filter = compileFilter(expression, { linkType: 1 });
    for (const [context, type, hook] of [["xdp", ProgramType.Xdp, undefined], ["skb", ProgramType.SchedCls, "socket"], ["skb", ProgramType.SchedCls, "tc"]] as const) {
      const rejectValue = context === "skb" && hook === "socket" ? 0 : 3;
      const generated = generateFilterProgram(filter, { context, hook, acceptValue: 7, rejectValue });
      let program: Program;
      try {
        program = Program.load({ type, instructions: generated, license: "GPL", name: "nb_filter" });
      } catch (error) {
        mismatches.push(`${context} ${expression}: load failed: ${(error as Error).message.slice(0, 400)}`);
        continue;
      }
      try {
        const got: number[] = [];
        const want: number[] = [];
        capture.packets.forEach((packet, index) => {
          if (packet.data.length < 14) return;
          let returnValue: number;
          try {
            returnValue = program.run({ data: Buffer.from(packet.data) }).returnValue;
          } catch (error) {
            // skb test runs refuse IPv4 frames too short for an IP header
            if (error instanceof SyscallError && error.code === "EINVAL" && context === "skb") {
              skipped++;
              return;
            }
            throw error;
          }
          runs++;
          // The kernel sees only the captured bytes: compare with the evaluator at that length.
          if (filter.matches({ data: packet.data, length: packet.data.length })) want.push(index);
          if (returnValue === 7) got.push(index);
          else assert.equal(returnValue, rejectValue);
        });
        if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(`${context} ${hook ?? ""} ${file}: ${expression}: evaluator ${JSON.stringify(want)}, kernel ${JSON.stringify(got)}`);
      } finally {
        program.close();
      }
    }
  }
  assert.deepEqual(mismatches, []);
  assert.ok(runs > 20000, `only ${runs} kernel runs`);
  assert.ok(skipped < runs / 20);
});

test("constant folding: an always-true filter is a bare accept; unrelated protocols cost no code", () => {
  const always = generateFilterProgram(compileFilter("1 = 1", { linkType: 1 }), { context: "xdp", prologue: "interpreter" });
  assert.equal(always.annotations.size, 0);
  const tcp = generateFilterProgram(compileFilter("tcp", { linkType: 1 }), { context: "xdp" });
  const tcpOrTcp = generateFilterProgram(compileFilter("tcp or tcp or (ip and tcp)", { linkType: 1 }), { context: "xdp" });
  assert.equal(tcpOrTcp.instructions.length, tcp.instructions.length, "repeated tests are threaded away");
  const ipv4Only = generateFilterProgram(compileFilter("ip host 10.0.0.1", { linkType: 1 }), { context: "xdp" });
  assert.ok(![...ipv4Only.annotations.values()].some((text) => text.includes("0x86dd")), "no IPv6 code for an IPv4-only filter");
  assert.ok(ipv4Only.annotations.size <= 3, `ip host needs 3 tests, got ${ipv4Only.annotations.size}`);
});

test("a filter that can never match is rejected before anything is generated", () => {
  assert.throws(() => compileFilter("ip and arp", { linkType: 1 }), /rejects all packets/);
  assert.throws(() => compileFilter("tcp and udp", { linkType: 1 }), /rejects all packets/);
});

/** bpf_skb_load_bytes for the interpreter: r1 = packet address, r2 offset, r3 buffer, r4 length. */
function skbLoadBytes(length: number) {
  return {
    26: (context: { arguments: readonly bigint[]; read(address: bigint, size: number): Uint8Array; write(address: bigint, bytes: Uint8Array): void }) => {
      const [packet, offset, buffer, size] = context.arguments as [bigint, bigint, bigint, bigint];
      if (offset + size > BigInt(length)) return -14n;
      context.write(buffer, context.read(packet + offset, Number(size)));
      return 0;
    },
  };
}

test("skb programs with bpf_skb_load_bytes select what tcpdump selects (asm interpreter, every third case)", () => {
  const mismatches: string[] = [];
  accepted.filter((_, i) => i % 3 === 0).forEach(({ expression, file, want }) => {
    const capture = captures.get(file)!;
    const filter = compileFilter(expression, { linkType: capture.linkType });
    const program = generateFilterProgram(filter, { context: "skb", skbLoads: "helper", prologue: "interpreter", acceptValue: 1, rejectValue: 2 });
    const got: number[] = [];
    capture.packets.forEach((packet, index) => {
      const interpreter = new Interpreter(program.instructions, { helpers: skbLoadBytes(packet.data.length) });
      const result = interpreter.run(packet.data, { registers: { 3: packet.length ?? packet.data.length, 4: 0 } });
      if (result.returnValue === 1n) got.push(index);
      else assert.equal(result.returnValue, 2n);
    });
    if (!selectionsAgree(expression, got, want, capture.packets)) mismatches.push(`${file}: ${expression}: tcpdump ${JSON.stringify(want)}, skb helper ${JSON.stringify(got)}`);
  });
  assert.deepEqual(mismatches, []);
});

test("tc direct access on non-linear skbs: the kernel code, pull or second copy, in the asm interpreter (linear part 14-80 bytes)", () => {
  const mismatches: string[] = [];
  let pulled = 0;
  let copied = 0;
  const context = socketBufferContext();
  accepted.filter((_, i) => i % 3 === 1).forEach(({ expression, file }, caseIndex) => {
    const capture = captures.get(file)!;
    if (capture.linkType !== 1) return;
    const filter = compileFilter(expression, { linkType: 1 });
    // The kernel prologue: data/data_end and skb->len from an __sk_buff, as tc runs it.
    const program = generateFilterProgram(filter, { context: "skb", hook: "tc", acceptValue: 1, rejectValue: 2 });
    let pulls = 0;
    let loads = 0;
    const interpreter = new Interpreter(program.instructions, {
      helpers: { 26: (helper) => (loads++, packetHelpers[26]!(helper)), 39: (helper) => (pulls++, packetHelpers[39]!(helper)) },
    });
    capture.packets.forEach((packet, index) => {
      if (packet.data.length < 14) return;
      // A linear part of 14 to 80 bytes (the Ethernet header is always linear at tc); the rest only through
      // helpers until bpf_skb_pull_data makes it linear.
      const linearLength = Math.min(packet.data.length, 14 + ((caseIndex * 7 + index * 13) % 67));
      const result = interpreter.run(packet.data, { context, linearLength });
      // skb->len is the bytes given, as in a kernel test run: compare with the evaluator at that length.
      const want = filter.matches({ data: packet.data, length: packet.data.length });
      if ((result.returnValue === 1n) !== want || (result.returnValue !== 1n && result.returnValue !== 2n)) {
        mismatches.push(`${file}: ${expression}: packet ${index} (linear ${linearLength} of ${packet.data.length}): evaluator ${want}, returned ${result.returnValue}`);
      }
    });
    if (pulls > 0) pulled++;
    if (loads > 0) copied++;
  });
  assert.deepEqual(mismatches.slice(0, 20), []);
  assert.ok(pulled > 100, `the pull ran for only ${pulled} expressions`);
  assert.ok(copied > 5, `the helper-based copy (loads without a static bound) ran for only ${copied} expressions`);
});

test("tc direct access: one bounds check covers a path; constants are swapped, not packet values", () => {
  const filter = compileFilter("icmp[icmptype] = icmp-echo", { linkType: 1 });
  const generated = generateFilterProgram(filter, { context: "skb", hook: "tc" });
  const listing = formatFilterProgram(generated);
  const fastPath = listing.slice(0, listing.search(/^nonlinear\d*:/m));
  assert.equal(fastPath.match(/if r\d > r\d goto/g)?.length, 2, `two bounds checks (fixed header, ICMP type):\n${fastPath}`);
  assert.doesNotMatch(fastPath, /be16|be32|skb\[/, "no byte swaps or LD_ABS on the direct path");
  // r6 keeps the context across the pull (the stub's only need); the rest of the code uses caller-saved registers only.
  assert.doesNotMatch(fastPath.replace(/^\(00\) r6 = r1$/m, "").replace(/\(r6 \+ 0x(4c|50)\)/g, ""), /\br[6-9]\b/, "only caller-saved registers besides the context copy");
  assert.match(listing, /call 0x27/, "bpf_skb_pull_data for non-linear skbs");
  assert.doesNotMatch(listing, /slow_|call 0x1a/, "no second, bpf_skb_load_bytes-based copy of the filter");
  assert.throws(() => generateFilterProgram(filter, { context: "skb", hook: "socket", skbLoads: "direct" }), /socket filters cannot read packet data directly/);
  const portrange = generateFilterProgram(compileFilter("portrange 1000-2000", { linkType: 1 }), { context: "xdp" });
  const before = generateFilterProgram(compileFilter("portrange 1000-2000", { linkType: 1 }), { context: "skb", hook: "socket" });
  assert.ok(portrange.instructions.length < 80, `identical port tests are emitted once (${portrange.instructions.length} instructions)`);
  assert.ok(before.instructions.length < 70, `LD_ABS code too (${before.instructions.length} instructions)`);
});

test("the verifier loads filters it once refused: a kept packet pointer computed afresh is checked again; a load no packet can satisfy rejects without unreachable code", (t) => {
  if (skipUnlessKernel(t, isRoot(), "loading BPF programs needs root")) return;
  const capture = captures.get("crafted-ethernet.pcap")!;
  for (const expression of [
    "((0x4 ^ icmp[40]) | -tcp[1:2]) <= -icmptype << vrrp[22:1]",
    "(port 6081 and 80 and (vlan and arp dst net 10.0.0.0/24)) or not ((tcp src or dst port 4789 or (-decnet[16:4] - lat[65535:4]) != 80))",
  ]) {
    const filter = compileFilter(expression, { linkType: 1 });
    for (const [options, type] of [[{ context: "skb", hook: "tc" }, ProgramType.SchedCls], [{ context: "xdp" }, ProgramType.Xdp], [{ context: "skb", hook: "socket" }, ProgramType.SocketFilter]] as const) {
      using program = Program.load({ type, instructions: generateFilterProgram(filter, options).instructions, license: "GPL", name: "nb_filter_fix" });
      if (type !== ProgramType.Xdp) continue;
      capture.packets.forEach((packet, index) => {
        if (packet.data.length < 14) return;
        const accepted = program.run({ data: Buffer.from(packet.data) }).returnValue === 2;
        assert.equal(accepted, filter.matches({ data: packet.data, length: packet.data.length }), `${expression}: packet ${index}`);
      });
    }
  }
});

test("filters as subprograms of another program, in the kernel (tc with bpf_skb_load_bytes, XDP)", (t) => {
  if (skipUnlessKernel(t, isRoot(), "loading BPF programs needs root")) return;
  const capture = captures.get("crafted-ethernet.pcap")!;
  for (const expression of ["tcp port 80", "vlan and udp", "ip6 protochain 6", "geneve and ip", "tcp[tcpflags] & tcp-syn != 0 or icmp"]) {
    const filter = compileFilter(expression, { linkType: 1 });
    for (const [context, type] of [["skb", ProgramType.SchedCls], ["xdp", ProgramType.Xdp]] as const) {
      const { assembler, entry } = generateFilterSubprogram(filter, { context, labelPrefix: "nbf_", acceptValue: 5, rejectValue: 6 });
      // The caller keeps something in r6 across the call and adds it to the filter's answer.
      const main = new Assembler().mov64(R6, 100).callLocal(entry).add64(R0, R6).exit().append(assembler);
      using program = Program.load({ type, instructions: main.finish(), license: "GPL", name: "nb_filter_sub" });
      capture.packets.forEach((packet, index) => {
        if (packet.data.length < 14) return;
        let returnValue: number;
        try {
          returnValue = program.run({ data: Buffer.from(packet.data) }).returnValue;
        } catch (error) {
          if (error instanceof SyscallError && error.code === "EINVAL" && context === "skb") return;
          throw error;
        }
        const want = filter.matches({ data: packet.data, length: packet.data.length }) ? 105 : 106;
        assert.equal(returnValue, want, `${context} ${expression} packet ${index}`);
      });
    }
  }
});

test("LD_ABS code refuses a non-zero reject value; subprogram labels carry the prefix", () => {
  const filter = compileFilter("udp", { linkType: 1 });
  assert.throws(() => generateFilterProgram(filter, { context: "skb", rejectValue: 2 }), /rejects with 0/);
  const { assembler, entry } = generateFilterSubprogram(filter, { context: "xdp", labelPrefix: "f1_" });
  assert.equal(entry, "f1_filter");
  const labels = [...assembler.finish().labels.keys()];
  assert.ok(labels.length > 2 && labels.every((label) => label.startsWith("f1_")), labels.join(","));
});

test("fuzz: generated programs agree with the evaluator on random valid filters", async () => {
  const { differentialExpressions } = await import("./filter-expressions.js");
  const { craftedEthernet } = await import("./filter-corpus.js");
  const packets = craftedEthernet();
  let seed = 99;
  const next = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 4294967296;
  };
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const arithmetic = ["ip[%] + 1", "tcp[%] * 3", "ether[%] ^ 0xff", "len - %", "ip[%:2] % 7", "udp[%] << 3", "(ip[%] | 4) & 0x3c", "ip6[%] / 3", "-ip[%]"];
  let checked = 0;
  for (let i = 0; i < 400 && checked < 250; i++) {
    let expression: string;
    if (next() < 0.5) {
      expression = `${pick(differentialExpressions)} ${pick(["and", "or"])} ${pick(differentialExpressions)}`;
    } else {
      const term = () => pick(arithmetic).replace("%", String(Math.floor(next() * 40)));
      expression = `${term()} ${pick([">", "<", "=", "!=", ">=", "<="])} ${next() < 0.5 ? String(Math.floor(next() * 300)) : term()}`;
    }
    let filter;
    try {
      filter = compileFilter(expression, { linkType: 1 });
    } catch {
      continue;
    }
    checked++;
    for (const context of ["skb", "xdp"] as const) {
      const interpreter = new Interpreter(generateFilterProgram(filter, { context, prologue: "interpreter", acceptValue: 1, rejectValue: 0 }).instructions);
      packets.forEach((packet, index) => {
        const length = packet.length ?? packet.data.length;
        const want = filter.matches({ data: packet.data, length });
        const got = interpreter.run(packet.data, { registers: { 3: length } }).returnValue === 1n;
        assert.equal(got, want, `${context} ${expression} packet ${index}`);
      });
    }
  }
  assert.ok(checked >= 150, `only ${checked} filters compiled`);
});
