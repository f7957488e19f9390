/**
 * Random expressions against libpcap: thousands of seeded expressions over the
 * whole grammar, each compiled by netbpf and by libpcap (in this process, see
 * libpcap-oracle.ts) for every link type the compiler accepts, and run over
 * every capture the tests have; plus mutated (mostly invalid) expressions,
 * where only the accept/reject decision is compared. A sample is checked
 * against `tcpdump -r` itself, so the in-process oracle is tcpdump's answer.
 *
 * NETBPF_DIFFERENTIAL_SEED (default: a fixed seed) and NETBPF_DIFFERENTIAL_COUNT
 * choose the run; `npm run test:differential-long` uses a rotating seed and more
 * expressions.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileFilter } from "../../src/filter/compile-filter.js";
import { generateFilterProgram } from "../../src/filter/generate-filter-program.js";
import { FilterSyntaxError } from "../../src/filter/filter-syntax-error.js";
import { seededRandom } from "../support/seeded-random.js";
import { isRoot, skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";
import { compileCaptureFilter, offlineTestRunContext, offlineUndecided } from "../../src/capture/capture-filter.js";
import { Program, ProgramType } from "../../src/index.js";
import { SyscallError, VerifierError } from "../../src/sys/errors.js";
import { readPcap, writePcap, type CapturedPacket } from "../support/pcap-writer.js";
import { craftedLinkProtocols, craftedRaw, truncatedEthernet } from "./filter-corpus.js";
import { capturedFixtures, craftedFixtures, fixtureDirectory, numbered } from "./generate-filter-fixtures.js";
import { libpcapAvailable, libpcapCompile } from "./libpcap-oracle.js";
import { expressionFamilies, mutateExpression, randomFilterExpressions, type ExpressionFamily } from "./random-filter-expressions.js";
import { tcpdumpSelect } from "./tcpdump-oracle.js";

const seed = Number(process.env.NETBPF_DIFFERENTIAL_SEED ?? 20261204);
const count = Number(process.env.NETBPF_DIFFERENTIAL_COUNT ?? 2000);
/** Errors libpcap 1.10 raises from its optimiser's constant folding, on expressions netbpf keeps as run-time arithmetic. */
const optimiserRefusals = /^(shift by more than 31 bits|modulus by zero|division by zero|expression rejects all packets)$/;

interface Capture {
  name: string;
  /** pcap LINKTYPE_* (what netbpf compiles for). */
  linkType: number;
  packets: CapturedPacket[];
}


function captures(): Capture[] {
  const onDisk = [...craftedFixtures.map((fixture) => fixture.file), ...capturedFixtures].map((file) => ({
    name: file.name,
    linkType: file.linkType,
    packets: readPcap(readFileSync(new URL(file.name, fixtureDirectory))).packets,
  }));
  const raw = craftedRaw();
  return [
    ...onDisk,
    { name: "crafted-link-protocols.pcap", linkType: 1, packets: numbered(craftedLinkProtocols()) },
    { name: "crafted-truncated.pcap", linkType: 1, packets: numbered(truncatedEthernet()) },
    { name: "crafted-ipv4.pcap", linkType: 228, packets: numbered(raw.filter((packet) => packet.data[0]! >> 4 === 4)) },
    { name: "crafted-ipv6.pcap", linkType: 229, packets: numbered(raw.filter((packet) => packet.data[0]! >> 4 === 6)) },
  ];
}

/** netbpf's decision: the indices selected, or the compile error. */
function netbpfFilter(expression: string, linkType: number): { error: string } | { matches(packet: CapturedPacket): boolean } {
  try {
    const filter = compileFilter(expression, { linkType });
    return { matches: (packet) => filter.matches({ data: packet.data, length: packet.length ?? packet.data.length }) };
  } catch (error) {
    if (error instanceof FilterSyntaxError) return { error: error.message.split("\n")[0]! };
    throw error;
  }
}

interface Tally {
  expressions: number;
  /** (expression, capture) pairs whose selections were compared. */
  selections: number;
  packets: number;
  /** (expression, link type) pairs whose accept/reject decision was compared. */
  decisions: number;
  /** Expressions netbpf refuses as matching nothing where libpcap's program indeed matched nothing. */
  provenEmpty: number;
  /** libpcap refused where its optimiser folded something to a constant shift, modulus or division by zero. */
  optimiserRefusals: number;
  /** Selections that differ only on packets too short for a load one optimiser dropped. */
  truncationDifferences: string[];
  mismatches: string[];
  families: Map<ExpressionFamily, number>;
}

function compare(expressions: { expression: string; families?: Set<ExpressionFamily> }[], all: Capture[], selectionsToo: boolean): Tally {
  const tally: Tally = { expressions: 0, selections: 0, packets: 0, decisions: 0, provenEmpty: 0, optimiserRefusals: 0, truncationDifferences: [], mismatches: [], families: new Map() };
  const linkTypes = [...new Set(all.map((capture) => capture.linkType))];
  for (const { expression, families } of expressions) {
    tally.expressions++;
    for (const linkType of linkTypes) {
      const ours = netbpfFilter(expression, linkType);
      const theirs = libpcapCompile(expression, linkType);
      tally.decisions++;
      for (const family of families ?? []) tally.families.set(family, (tally.families.get(family) ?? 0) + 1);
      if ("error" in ours && !("error" in theirs) && ours.error.includes("expression rejects all packets")) {
        // netbpf proves some contradictions libpcap's optimiser leaves in (`tcp and netbeui`):
        // allowed only when libpcap's program indeed selects nothing anywhere (README).
        const selected = all.filter((capture) => capture.linkType === linkType).flatMap((capture) => capture.packets.filter((packet) => theirs.matches(packet)));
        theirs.free();
        tally.provenEmpty++;
        if (selected.length > 0) tally.mismatches.push(`link type ${linkType}: ${JSON.stringify(expression)}: netbpf says it rejects all packets, libpcap selects ${selected.length}`);
        continue;
      }
      if ("error" in theirs && !("error" in ours) && optimiserRefusals.test(theirs.error)) {
        // libpcap 1.10's optimiser folds values netbpf keeps as packet loads, then refuses the result (README).
        tally.optimiserRefusals++;
        continue;
      }
      if ("error" in ours || "error" in theirs) {
        if ("error" in ours !== "error" in theirs) {
          tally.mismatches.push(`link type ${linkType}: ${JSON.stringify(expression)}: libpcap ${"error" in theirs ? `refuses (${theirs.error})` : "accepts"}, netbpf ${"error" in ours ? `refuses (${ours.error})` : "accepts"}`);
        }
        if (!("error" in theirs)) theirs.free();
        continue;
      }
      try {
        if (!selectionsToo) continue;
        for (const capture of all) {
          if (capture.linkType !== linkType) continue;
          const differing: number[] = [];
          capture.packets.forEach((packet, index) => {
            if (ours.matches(packet) !== theirs.matches(packet)) differing.push(index);
          });
          tally.selections++;
          tally.packets += capture.packets.length;
          // Both optimisers drop loads whose result cannot change the verdict, but not always the same ones:
          // a packet too short for a load one side dropped differs. Such a difference vanishes when the
          // packet is long enough for every load (zero bytes appended): tolerated, counted and printed (README).
          const loadOnly = differing.length > 0 && differing.every((index) => {
            const packet = capture.packets[index]!;
            const longer = { data: Uint8Array.from([...packet.data, ...new Uint8Array(512)]), length: (packet.length ?? packet.data.length) + 512 };
            return ours.matches(longer) === theirs.matches(longer);
          });
          if (loadOnly) {
            tally.truncationDifferences.push(`${capture.name}: ${JSON.stringify(expression)}: ${differing.length} packet(s) too short for a load only one side kept`);
          } else if (differing.length > 0) {
            const detail = differing.slice(0, 8).map((index) => `${index}${theirs.matches(capture.packets[index]!) ? "+" : "-"}`).join(" ");
            tally.mismatches.push(`${capture.name}: ${JSON.stringify(expression)}: ${differing.length} packet(s) differ (libpcap +selects/-not): ${detail}`);
          }
        }
      } finally {
        theirs.free();
      }
    }
  }
  return tally;
}

function report(name: string, tally: Tally): string {
  return `${name}: ${tally.expressions} expressions, ${tally.decisions} accept/reject decisions and ${tally.selections} expression x capture selections (${tally.packets} packet verdicts) compared with libpcap, seed ${seed}; ${tally.provenEmpty} refused by netbpf as matching nothing where libpcap matched nothing; ${tally.optimiserRefusals} refused only by libpcap's optimiser; ${tally.truncationDifferences.length} differing only where a load one optimiser dropped runs past the packet`;
}

test("random valid expressions select the same packets as libpcap on every capture and link type", (t) => {
  if (skipUnlessTool(t, libpcapAvailable(), "libpcap.so.0.8 (Debian libpcap0.8, installed with tcpdump)")) return;
  const all = captures();
  const expressions = randomFilterExpressions(seed, count);
  const tally = compare(expressions, all, true);
  t.diagnostic(report("valid", tally));
  for (const line of tally.truncationDifferences) t.diagnostic(`differs only through a dropped load: ${line}`);
  assert.ok(tally.truncationDifferences.length <= tally.selections / 500, `${tally.truncationDifferences.length} selections differ through dropped loads: more than the optimisers' differences explain`);
  t.diagnostic(`families: ${expressionFamilies.map((family) => `${family} ${tally.families.get(family) ?? 0}`).join(", ")}`);
  assert.ok(tally.selections > 1000, `only ${tally.selections} selections compared: the suite compared (almost) nothing`);
  for (const family of expressionFamilies) assert.ok((tally.families.get(family) ?? 0) > 0, `no expression of family ${family} was compared`);
  assert.deepEqual(tally.mismatches, [], `${tally.mismatches.length} disagreements:\n${tally.mismatches.slice(0, 30).join("\n")}`);
});

test("mutated expressions are accepted or refused exactly as libpcap decides", (t) => {
  if (skipUnlessTool(t, libpcapAvailable(), "libpcap.so.0.8 (Debian libpcap0.8, installed with tcpdump)")) return;
  const random = seededRandom(seed ^ 0x5eed);
  const mutated = randomFilterExpressions(seed + 1, Math.ceil(count / 2)).map(({ expression }) => ({ expression: mutateExpression(expression, random) }));
  const all = captures().filter((capture) => capture.name.startsWith("crafted"));
  const tally = compare(mutated, all, true);
  t.diagnostic(report("mutated", tally));
  assert.ok(tally.decisions > 1000, `only ${tally.decisions} decisions compared`);
  assert.deepEqual(tally.mismatches, [], `${tally.mismatches.length} disagreements:\n${tally.mismatches.slice(0, 30).join("\n")}`);
});

test("the in-process libpcap oracle is tcpdump -r's answer (a sample of expressions run through tcpdump itself)", async (t) => {
  if (skipUnlessTool(t, libpcapAvailable(), "libpcap.so.0.8 (Debian libpcap0.8, installed with tcpdump)")) return;
  const directory = mkdtempSync(join(tmpdir(), "nb-nbf1-oracle-"));
  try {
    const all = captures();
    const expressions = randomFilterExpressions(seed, count).filter((_, i) => i % Math.ceil(count / 24) === 0);
    let compared = 0;
    const differences: string[] = [];
    for (const [i, { expression }] of expressions.entries()) {
      const capture = all[i % all.length]!;
      const file = join(directory, capture.name);
      writeFileSync(file, writePcap(capture.linkType, numbered(capture.packets)));
      const theirs = libpcapCompile(expression, capture.linkType);
      const want = "error" in theirs ? "error" : capture.packets.flatMap((packet, index) => (theirs.matches(packet) ? [index] : []));
      if (!("error" in theirs)) theirs.free();
      const got = await tcpdumpSelect(file, expression);
      compared++;
      if (JSON.stringify(got) !== JSON.stringify(want)) differences.push(`${capture.name}: ${expression}: tcpdump ${JSON.stringify(got)}, in-process ${JSON.stringify(want)}`);
    }
    t.diagnostic(`oracle: ${compared} expressions run through tcpdump -r`);
    assert.ok(compared >= 20);
    assert.deepEqual(differences, []);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("the generated kernel code agrees: a sample of random expressions run in the kernel (BPF_PROG_TEST_RUN) over the Ethernet captures", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  const ethernetCaptures = captures().filter((capture) => capture.linkType === 1);
  const sample = randomFilterExpressions(seed, count).filter((_, i) => i % 40 === 0);
  let programs = 0;
  let runs = 0;
  const refused: string[] = [];
  const differences: string[] = [];
  for (const { expression } of sample) {
    let filter;
    try {
      filter = compileCaptureFilter(expression, 1);
    } catch (error) {
      if (error instanceof FilterSyntaxError) continue;
      throw error;
    }
    let loaded: Program;
    try {
      loaded = Program.load({ type: ProgramType.SchedCls, instructions: filter.offlineProgram, name: "nbf1_random" });
    } catch (error) {
      if (!(error instanceof VerifierError)) throw error;
      refused.push(expression);
      continue;
    }
    using program = loaded;
    programs++;
    for (const capture of ethernetCaptures) {
      capture.packets.forEach((packet, index) => {
        const context = offlineTestRunContext(packet.data.length, packet.length ?? packet.data.length);
        if (context === undefined) return;
        let result: number;
        try {
          result = program.run({ data: Buffer.from(packet.data), context }).returnValue;
        } catch (error) {
          // The kernel refuses some packets for skb test runs (too short for their IP header, over about 3.7 KB).
          if (error instanceof SyscallError && error.code === "EINVAL") return;
          throw error;
        }
        if (result === offlineUndecided) return;
        runs++;
        const want = filter.matches({ data: packet.data, length: packet.length ?? packet.data.length });
        if ((result !== 0) !== want) differences.push(`${capture.name} #${index}: ${JSON.stringify(expression)}: kernel ${result}, evaluator ${want}`);
      });
    }
  }
  t.diagnostic(`kernel: ${programs} random filters loaded, ${runs} packet runs compared with the evaluator`);
  assert.ok(programs >= 10 && runs > 1000, `only ${programs} programs and ${runs} runs`);
  assert.deepEqual(differences.slice(0, 20), []);
  assert.deepEqual(refused, [], "the verifier refused generated filter code");
});

test("the verifier loads the code generated for every random expression (tc direct access and XDP, every link type)", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to load programs")) return;
  const contexts = [
    { options: { context: "skb", hook: "tc" }, type: ProgramType.SchedCls },
    { options: { context: "xdp" }, type: ProgramType.Xdp },
  ] as const;
  const linkTypes = [...new Set(captures().map((capture) => capture.linkType))];
  let loaded = 0;
  const refused: string[] = [];
  randomFilterExpressions(seed + 2, count).forEach(({ expression }, index) => {
    // Every expression in the Ethernet code; the other link types take turns.
    for (const linkType of new Set([1, linkTypes[index % linkTypes.length]!])) {
      let filter;
      try {
        filter = compileFilter(expression, { linkType });
      } catch (error) {
        if (error instanceof FilterSyntaxError) continue;
        throw error;
      }
      for (const { options, type } of contexts) {
        try {
          Program.load({ type, instructions: generateFilterProgram(filter, options).instructions, license: "GPL", name: "nbf_load_all" }).close();
          loaded++;
        } catch (error) {
          if (!(error instanceof VerifierError)) throw error;
          refused.push(`link type ${linkType}, ${options.context}: ${expression}: ${error.message}`);
        }
      }
    }
  });
  t.diagnostic(`verifier: ${loaded} generated programs of ${count} random expressions loaded, ${refused.length} refused`);
  assert.ok(loaded > count, `only ${loaded} programs loaded`);
  assert.deepEqual(refused.slice(0, 10), [], "every expression libpcap's grammar accepts must give code the verifier loads");
});
