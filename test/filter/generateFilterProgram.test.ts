import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Interpreter } from "../../src/asm/interpreter.js";
import { Program } from "../../src/core/program.js";
import { SyscallError } from "../../src/sys/errors.js";
import { ProgramType } from "../../src/sys/bpf-constants.js";
import { compileFilter } from "../../src/filter/compileFilter.js";
import { generateFilterProgram, type FilterContext } from "../../src/filter/generateFilterProgram.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { readPcap } from "../support/pcapWriter.js";
import { fixtureDirectory, type ExpectedResults } from "./generateFilterFixtures.js";

const expected = JSON.parse(readFileSync(new URL("expected.json", fixtureDirectory), "utf8")) as ExpectedResults;
const captures = new Map(expected.files.map((file) => [file.name, readPcap(readFileSync(new URL(file.name, fixtureDirectory)))]));
const accepted = expected.cases.flatMap(({ expression, results }) =>
  Object.entries(results).filter(([, result]) => result !== "error").map(([file, result]) => ({ expression, file, want: result as number[] })));

for (const context of ["skb", "xdp"] as FilterContext[]) {
  test(`${context} programs select what tcpdump selects (asm interpreter, every expression and capture)`, () => {
    const mismatches: string[] = [];
    for (const { expression, file, want } of accepted) {
      const capture = captures.get(file)!;
      const filter = compileFilter(expression, { linkType: capture.linkType });
      const program = generateFilterProgram(filter, { context, prologue: "interpreter", acceptValue: 1, rejectValue: 0 });
      const interpreter = new Interpreter(program.instructions);
      const got: number[] = [];
      capture.packets.forEach((packet, index) => {
        const result = interpreter.run(packet.data, { registers: { 3: packet.length ?? packet.data.length, 4: 0 } });
        if (result.returnValue === 1n) got.push(index);
      });
      if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(`${file}: ${expression}: tcpdump ${JSON.stringify(want)}, ${context} ${JSON.stringify(got)}`);
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
    for (const [context, type] of [["xdp", ProgramType.Xdp], ["skb", ProgramType.SchedCls]] as const) {
      const rejectValue = context === "skb" ? 0 : 3;
      const generated = generateFilterProgram(filter, { context, acceptValue: 7, rejectValue });
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
        if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(`${context} ${file}: ${expression}: evaluator ${JSON.stringify(want)}, kernel ${JSON.stringify(got)}`);
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
