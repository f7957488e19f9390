/**
 * One definition per concept: each concept below is declared (exported or
 * not) in exactly one source module; every other module imports it. A second
 * copy — even a private one — fails here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { FdOwner } from "../src/core/fd-owner.js";
import { BpfMap } from "../src/core/map.js";
import { Program } from "../src/core/program.js";
import { Link } from "../src/link/link.js";

const sourceRoot = fileURLToPath(new URL("../../src/", import.meta.url));

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(folder, entry.name)) : entry.name.endsWith(".ts") ? [join(folder, entry.name)] : []);
}

const sources = sourceFiles(sourceRoot).map((path) => ({ path: relative(sourceRoot, path), text: readFileSync(path, "utf8") }));
const supportRoot = fileURLToPath(new URL("../../test/support/", import.meta.url));
const supportSources = sourceFiles(supportRoot).map((path) => ({ path: `test/support/${relative(supportRoot, path)}`, text: readFileSync(path, "utf8") }));

/** The modules that declare `name` as a function, class, constant, variable, interface, type or enum. */
function declaringModules(name: string): string[] {
  const declaration = new RegExp(`^\\s*(?:export\\s+)?(?:declare\\s+)?(?:default\\s+)?(?:abstract\\s+)?(?:async\\s+)?(?:function\\*?|class|const|let|var|interface|type|enum)\\s+${name}\\b`, "m");
  return sources.filter((source) => declaration.test(source.text)).map((source) => source.path).sort();
}

/** Modules whose text matches `pattern`. */
function modulesMatching(pattern: RegExp): string[] {
  return sources.filter((source) => pattern.test(source.text)).map((source) => source.path).sort();
}

const concepts: Record<string, string> = {
  // Verifier-log parsing (VerifierError's summary and VerifierReport read the same entries).
  parseVerifierLog: "sys/verifier-log.ts",
  summarizeVerifierLog: "sys/verifier-log.ts",
  parseRegisterState: "sys/verifier-log.ts",
  VerifierSummary: "sys/verifier-log.ts",
  SourceLine: "sys/verifier-log.ts",
};

for (const [name, module] of Object.entries(concepts)) {
  test(`${name} is defined once, in ${module}`, () => {
    assert.deepEqual(declaringModules(name), [module]);
  });
}

test("only sys/verifier-log.ts reads the verifier's instruction lines", () => {
  // `12: (b7) r0 = 0`: the opcode in parentheses after the instruction index.
  assert.deepEqual(modulesMatching(/\\\(\(?\[0-9a-f\]\{2\}\)?\\\)/), ["sys/verifier-log.ts"]);
});

test("the program-type probe is features' probeProgramType: only Program.load and features load programs", () => {
  const loaders = sources.filter((source) => /\bprogramLoad\(/.test(source.text) && source.path !== "sys/bpf.ts")
    .map((source) => `${source.path}×${source.text.match(/\bprogramLoad\(/g)!.length}`).sort();
  assert.deepEqual(loaders, ["core/program.ts×1", "features/features.ts×2"]);
});

test("the instruction encoder is asm/instruction.ts's encode: nothing else packs the register byte", () => {
  // `(src << 4) | dst` and its spellings: the byte that holds both registers of an instruction.
  const packsRegisters = /\bsrc\b(?: & 0x0f\))? << 4\) \| \(?(?:\w+\.)?dst\b/;
  assert.deepEqual([...sources, ...supportSources].filter((source) => packsRegisters.test(source.text)).map((source) => source.path), ["asm/instruction.ts"]);
});

test("maps, programs and links share one fd-owner base: only core/fd-owner.ts pins and disposes them", () => {
  for (const owner of [BpfMap, Program, Link]) assert.ok(owner.prototype instanceof FdOwner, owner.name);
  assert.deepEqual(modulesMatching(/\bobjectPin\(/).filter((path) => path !== "sys/bpf.ts"), ["core/fd-owner.ts"]);
  for (const path of ["core/map.ts", "core/program.ts", "link/link.ts"]) {
    assert.ok(!sources.find((source) => source.path === path)!.text.includes("[Symbol.dispose]"), `${path} defines its own [Symbol.dispose]`);
  }
});

test("waiting for a stream to drain is pcap/drained.ts's drained()", () => {
  assert.deepEqual(modulesMatching(/\.on\("drain"/), ["pcap/drained.ts"]);
});

test("capture -r ends its output in one place (withOfflineOutput) for the general reader and the pcap fast path", () => {
  const command = sources.find((source) => source.path === "cli/capture-command.ts")!.text;
  // Where nothing matched (or when interrupted before the first packet), the file is started from the first interface: once, not once per ending.
  assert.equal(command.match(/reader\.interfaces\[0\]\?\.linkType \?\? LinkType\.ETHERNET/g)?.length, 1);
  assert.equal(command.match(/onStopSignals\(\(\) => \{/g)?.length, 1);
  assert.equal(command.match(/withOfflineOutput\(options,/g)?.length, 2);
});

test("audit records are flattened into table columns in one place (audit/record-columns.ts) for the audit log and ClickHouse", () => {
  assert.deepEqual(modulesMatching(/\bparent_pid: /), ["audit/record-columns.ts"]);
  assert.deepEqual(modulesMatching(/\bprocess\.parentPid \?\? null/), ["audit/record-columns.ts"]);
  assert.deepEqual(modulesMatching(/\.\.\.recordColumnValues\(record\)/), ["audit/audit-log.ts"]);
  assert.deepEqual(modulesMatching(/\.\.\.recordColumns\(record\)/), ["audit/clickhouse-sink.ts"]);
});
