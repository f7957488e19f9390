import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { compileFilter } from "../../src/filter/compile-filter.js";
import { FilterSyntaxError } from "../../src/filter/filter-syntax-error.js";
import { readPcap, writePcap } from "../support/pcap-writer.js";
import { craftedFixtures, fixtureDirectory, numbered, type ExpectedResults } from "./generate-filter-fixtures.js";
import { selectionsAgree } from "./filter-expressions.js";
import { mapLimit, tcpdumpAvailable, tcpdumpSelect, type TcpdumpResult } from "./tcpdump-oracle.js";
import { skipUnlessTool } from "../support/kernel.js";

const expected = JSON.parse(readFileSync(new URL("expected.json", fixtureDirectory), "utf8")) as ExpectedResults;
const captures = new Map(expected.files.map((file) => [file.name, readPcap(readFileSync(new URL(file.name, fixtureDirectory)))]));

/** What netbpf's reference evaluator selects: indices, or "error" when the expression is rejected. */
export function netbpfSelect(fileName: string, expression: string): TcpdumpResult {
  const capture = captures.get(fileName)!;
  let filter;
  try {
    filter = compileFilter(expression, { linkType: capture.linkType });
  } catch (error) {
    if (error instanceof FilterSyntaxError) return "error";
    throw error;
  }
  const selected: number[] = [];
  capture.packets.forEach((packet, index) => {
    if (filter.matches({ data: packet.data, length: packet.length ?? packet.data.length })) selected.push(index);
  });
  return selected;
}

test("crafted fixtures are what the corpus generates", () => {
  for (const fixture of craftedFixtures) {
    const onDisk = readFileSync(new URL(fixture.file.name, fixtureDirectory));
    assert.deepEqual(onDisk, writePcap(fixture.file.linkType, numbered(fixture.packets())), `${fixture.file.name} is stale: regenerate the fixtures`);
  }
});

test("the reference evaluator selects exactly what tcpdump selected, for every expression and capture", () => {
  const mismatches: string[] = [];
  let compared = 0;
  for (const { expression, results } of expected.cases) {
    for (const [fileName, want] of Object.entries(results)) {
      const got = netbpfSelect(fileName, expression);
      compared++;
      if (!selectionsAgree(expression, got, want, captures.get(fileName)!.packets)) {
        mismatches.push(`${fileName}: ${JSON.stringify(expression)}: tcpdump ${JSON.stringify(want)}, netbpf ${JSON.stringify(got)}`);
      }
    }
  }
  assert.ok(compared > 1000, `only ${compared} comparisons`);
  assert.deepEqual(mismatches, [], `${mismatches.length} of ${compared} differ:\n${mismatches.slice(0, 40).join("\n")}`);
});

test("the stored tcpdump results are current (tcpdump rerun on a sample)", async (t) => {
  if (skipUnlessTool(t, await tcpdumpAvailable(), "tcpdump is not installed")) return;
  const { execFileSync } = await import("node:child_process");
  const version = execFileSync("tcpdump", ["--version"]).toString().split("\n").slice(0, 2).join("; ");
  if (skipUnlessTool(t, version === expected.tcpdump, `results were recorded with ${expected.tcpdump}; this machine has ${version}`)) return;
  const sample = expected.cases.filter((_, i) => i % 7 === 0);
  const stale: string[] = [];
  await mapLimit(sample, 4, async ({ expression, results }) => {
    for (const [fileName, want] of Object.entries(results)) {
      const got = await tcpdumpSelect(new URL(fileName, fixtureDirectory).pathname, expression);
      if (JSON.stringify(got) !== JSON.stringify(want)) stale.push(`${fileName}: ${expression}`);
    }
  });
  assert.deepEqual(stale, []);
});
