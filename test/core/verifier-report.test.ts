import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { VerifierReport, formatVerifierError, verifierReport, type VerifierFailureCategory } from "../../src/core/verifier-report.js";
import { Collection } from "../../src/core/collection.js";
import { Program } from "../../src/core/program.js";
import { loadCollectionSpec } from "../../src/elf/collection-spec.js";
import { VerifierError } from "../../src/sys/errors.js";
import { parseRegisterState, summarizeVerifierLog } from "../../src/sys/verifier-log.js";
import { isRoot, skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";
import { rejectedPrograms, rejectionOf, type RejectedProgramName } from "../support/rejected-programs.js";
import { seededRandom } from "../support/seeded-random.js";

const fixtures = fileURLToPath(new URL("../../../test/fixtures/verifier/", import.meta.url));
const capturedLog = (name: string) => readFileSync(`${fixtures}logs/${name}.log`, "utf8");

// ---------------------------------------------------------------------------
// The parser on logs captured from the kernel (test/fixtures/verifier/logs).

test("captured log: packet read past the checked bounds, with source comments", () => {
  const report = VerifierReport.fromLog(capturedLog("c-packet-bounds"));
  assert.equal(report.category, "packet-bounds");
  assert.equal(report.instruction, 6);
  assert.equal(report.instructionText, "r1 = *(u8 *)(r1 +23)");
  assert.deepEqual(report.messageLines, ["invalid access to packet, off=23 size=1, R1(id=0,off=23,r=14)", "R1 offset is outside of the packet"]);
  assert.deepEqual(report.source, { fileName: "rejected.c", lineNumber: 29, text: "if (ip->protocol == IPPROTO_TCP)" });
  assert.equal(report.registers?.values.R3, "pkt(off=14,r=14)");
  assert.equal(report.registers?.values.R2, "pkt_end()");
  assert.equal(report.registers?.values.R0, "2");
  assert.equal(report.registers?.line, "R2=pkt_end() R3=pkt(off=14,r=14)");
  assert.match(report.explanation, /R1 reaches byte 23 of the packet, but only the first 14 bytes were checked/);
});

test("captured log: map value used without a NULL check", () => {
  const report = VerifierReport.fromLog(capturedLog("c-null-value"));
  assert.equal(report.category, "null-pointer");
  assert.equal(report.instruction, 7);
  assert.equal(report.source?.lineNumber, 40);
  assert.equal(report.source?.text, "*count += 1;");
  assert.equal(report.registers?.values.R0, "map_value_or_null(id=1,map=counters,ks=4,vs=8)");
  assert.equal(report.registers?.values["fp-8"], "mmmm????");
  assert.match(report.explanation, /R0 holds a pointer that may be NULL/);
});

test("captured log: a leaked ring buffer reservation points at where it was acquired", () => {
  const report = VerifierReport.fromLog(capturedLog("c-unreleased"));
  assert.equal(report.category, "unreleased-reference");
  assert.equal(report.instruction, 16);
  assert.equal(report.instructionText, "exit");
  // The exit is reached through a jump after which the kernel printed no new source comment: no guess.
  assert.equal(report.source, undefined);
  assert.equal(report.related.length, 1);
  assert.equal(report.related[0]!.instruction, 5);
  assert.equal(report.related[0]!.instructionText, "call bpf_ringbuf_reserve#131");
  assert.equal(report.related[0]!.source?.lineNumber, 47);
  assert.equal(report.registers?.values.refs, "2");
  assert.equal(report.registers?.values.R1, "scalar(smin=smin32=0,smax=umax=smax32=umax32=100,var_off=(0x0; 0x7f))");
});

test("captured log: line info records give the source line where the log has none", () => {
  const lineInfo = [
    { slot: 0, fileName: "rejected.c", lineNumber: 45, line: "int unreleased(struct __sk_buff *skb)" },
    { slot: 1, fileName: "rejected.c", lineNumber: 47, line: "\t__u32 *slot = bpf_ringbuf_reserve(&events, sizeof(__u32), 0);" },
    { slot: 9, fileName: "rejected.c", lineNumber: 52, line: "\tif (skb->len > 100)" },
    { slot: 14, fileName: "rejected.c", lineNumber: 0, line: "" },
    { instructionOffset: 15 * 8, fileName: "./rejected.c", lineNumber: 55, column: 1, line: "}" },
  ];
  const report = VerifierReport.fromLog(capturedLog("c-unreleased"), { lineInfo });
  assert.deepEqual(report.source, { fileName: "rejected.c", lineNumber: 55, column: 1, text: "}" });
  assert.equal(report.related[0]!.source?.lineNumber, 47);
});

test("captured log: helper the program type may not call", () => {
  const report = VerifierReport.fromLog(capturedLog("c-wrong-helper"));
  assert.equal(report.category, "helper-not-allowed");
  assert.equal(report.instructionText, "call bpf_redirect#23");
  assert.equal(report.source?.lineNumber, 60);
  assert.match(report.explanation, /bpf_redirect#23 is not among them/);
});

test("captured log: infinite loop", () => {
  const report = VerifierReport.fromLog(capturedLog("infinite-loop"));
  assert.equal(report.category, "unbounded-loop");
  assert.equal(report.instruction, 2);
  assert.equal(report.instructionText, "if r6 != 0x0 goto pc-1");
  // "cur state:" / "old state:" follow the message but are not part of it.
  assert.deepEqual(report.messageLines, ["infinite loop detected at insn 2"]);
  assert.deepEqual(report.loop, { first: 2, last: 2 });
});

test("captured log: a loop that exhausts the budget is a loop problem", () => {
  const report = VerifierReport.fromLog(capturedLog("unbounded-loop"));
  assert.equal(report.category, "unbounded-loop");
  assert.equal(report.message, "BPF program is too large. Processed 1000001 insn");
  assert.deepEqual(report.loop, { first: 2, last: 3 });
  assert.equal(report.instructionText, "if r7 < r6 goto pc-2");
  assert.equal(report.registers?.values.R7, "0x3d090");
});

test("captured log: path explosion without a loop is a size problem, message on the jump's line", () => {
  const report = VerifierReport.fromLog(capturedLog("too-many-instructions"));
  assert.equal(report.category, "too-many-instructions");
  assert.equal(report.message, "BPF program is too large. Processed 1000001 insn");
  assert.equal(report.loop, undefined);
  assert.match(report.instructionText ?? "", /^if r6 & 0x\w+ goto pc\+1$/);
  const branches = VerifierReport.fromLog(capturedLog("too-many-branches"));
  assert.equal(branches.category, "too-many-instructions");
  assert.equal(branches.instruction, 16386);
  assert.match(branches.explanation, /8193 were pending/);
});

test("captured level-2 log: registers of the called function, not the caller's", () => {
  const report = VerifierReport.fromLog(capturedLog("subprogram-level2"));
  assert.equal(report.category, "uninitialized-register");
  assert.equal(report.instruction, 7);
  assert.equal(report.instructionText, "r0 += r3");
  assert.deepEqual(report.messageLines, ["R3 !read_ok"]);
  assert.equal(report.registers?.frame, 1);
  assert.equal(report.registers?.values.R0, "1");
  // R6 lives in the caller's frame only.
  assert.equal(report.registers?.values.R6, undefined);
  assert.match(report.format(), /in a called function: frame 1/);
});

test("captured level-2 log: a whole-program error does not blame the last path checked", () => {
  const log = capturedLog("stack-limit-level2");
  assert.match(log, /^2: \(95\) exit$/m);
  const report = VerifierReport.fromLog(log);
  assert.equal(report.category, "stack-access");
  assert.equal(report.instruction, undefined);
  assert.equal(report.registers, undefined);
  assert.doesNotMatch(report.format(), /instruction:/);
});

test("captured logs: one category each", () => {
  const expected: Record<string, [VerifierFailureCategory, number | undefined]> = {
    "argument-type": ["argument-type", 4],
    "context-access": ["context-access", 0],
    "helper-license": ["helper-not-allowed", 4],
    misaligned: ["misaligned", 5],
    "pointer-arithmetic": ["pointer-arithmetic", 0],
    "return-value": ["return-value", 1],
    "stack-limit": ["stack-access", undefined],
  };
  for (const [name, [category, instruction]] of Object.entries(expected)) {
    const report = VerifierReport.fromLog(capturedLog(name));
    assert.equal(report.category, category, name);
    assert.equal(report.instruction, instruction, name);
  }
  assert.match(VerifierReport.fromLog(capturedLog("return-value")).explanation, /\[0, 1\]; on some path R0 holds smin=7 smax=7/);
  assert.match(VerifierReport.fromLog(capturedLog("stack-limit")).explanation, /2 frames need 800 bytes/);
  assert.match(VerifierReport.fromLog(capturedLog("argument-type")).explanation, /R1 of the call has type scalar, but the helper expects map_ptr/);
});

// ---------------------------------------------------------------------------
// Messages this kernel does not print for root (unprivileged loads, older
// kernels), in the kernel's wording: matched without a full log.

test("verifier messages map to categories", () => {
  const cases: [string, VerifierFailureCategory][] = [
    ["back-edge from insn 5 to 2", "unbounded-loop"],
    ["invalid indirect read from stack R2 off -4+0 size 4", "stack-access"],
    ["invalid read from stack off -8+0 size 8", "stack-access"],
    ["invalid write to stack R1 off=-600 size=8", "stack-access"],
    ["invalid variable-offset read from stack R2 var_off=(0x0; 0xff) off=-8 size=8", "stack-access"],
    ["R2 !read_ok", "uninitialized-register"],
    ["unknown func bpf_redirect_map#51", "helper-not-allowed"],
    ["helper call is not allowed in probe", "helper-not-allowed"],
    ["R1 invalid mem access 'ptr_or_null_'", "null-pointer"],
    ["R1 type=map_value_or_null expected=fp, pkt, pkt_meta, map_key, map_value", "null-pointer"],
    ["R3 invalid mem access 'scalar'", "not-a-pointer"],
    ["R2 invalid mem access 'inv'", "not-a-pointer"],
    ["misaligned stack access off 0+-3 size 4", "misaligned"],
    ["R1 bitwise operator &= on pointer prohibited", "pointer-arithmetic"],
    ["R0 leaks addr as return value", "return-value"],
    ["dereference of modified ctx ptr R1 off=4 disallowed", "context-access"],
    ["The sequence of 8193 jumps is too complex.", "too-many-instructions"],
    ["combined stack size of 3 calls is 544. Too large", "stack-access"],
    ["something new the kernel says", "unknown"],
  ];
  for (const [message, category] of cases) {
    const report = VerifierReport.fromLog(`0: R1=ctx() R10=fp0\n0: (b7) r0 = 0                        ; R0=0\n1: (95) exit\n${message}\nprocessed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n`);
    assert.equal(report.category, category, message);
    assert.equal(report.message, message);
    assert.ok(report.explanation.length > 20 && report.advice.length > 20, message);
  }
  const exitWithoutValue = VerifierReport.fromLog("0: R1=ctx() R10=fp0\n0: (95) exit\nR0 !read_ok\n");
  assert.match(exitWithoutValue.explanation, /exits without setting R0/);
});

test("source comments without file and line (kernels before 6.6) still give the text", () => {
  const log = "0: R1=ctx(id=0,off=0,imm=0) R10=fp0\n; int x = skb->len;\n0: (61) r0 = *(u32 *)(r1 +1000)\ninvalid bpf_context access off=1000 size=4\n";
  const report = VerifierReport.fromLog(log);
  assert.deepEqual(report.source, { fileName: undefined, lineNumber: undefined, text: "int x = skb->len;" });
  assert.match(report.format(), /source: +int x = skb->len;\n/);
  assert.equal(report.registers?.values.R1, "ctx(id=0,off=0,imm=0)");
});

test("register state with spaces inside parentheses, write marks and stack slots", () => {
  assert.deepEqual(parseRegisterState("R1=ctx() R6_w=scalar(smin=0,var_off=(0x0; 0xff)) fp-8_w=mmmm???? refs=2 frame1: noise"), {
    R1: "ctx()",
    R6: "scalar(smin=0,var_off=(0x0; 0xff))",
    "fp-8": "mmmm????",
    refs: "2",
  });
  assert.deepEqual(parseRegisterState(""), {});
});

test("logs without instructions, empty logs and odd lines give a report, not an exception", () => {
  const empty = VerifierReport.fromLog("");
  assert.equal(empty.category, "unknown");
  assert.equal(empty.instruction, undefined);
  assert.equal(empty.message, "the program was rejected");
  assert.match(empty.format(), /The verifier rejected the program/);
  // A full state after "from X to Y" replaces what came before.
  const log = "0: R1=ctx() R10=fp0\n0: (b7) r3 = 1                        ; R3=1\nfrom 4 to 6: R1=ctx() R2=pkt(r=8) R10=fp0\n6: (71) r0 = *(u8 *)(r2 +9)\ninvalid access to packet, off=9 size=1, R2(id=0,off=9,r=8)\n";
  const report = VerifierReport.fromLog(log);
  assert.deepEqual(report.registers?.values, { R1: "ctx()", R2: "pkt(r=8)", R10: "fp0" });
  assert.equal(report.registers?.instruction, 6);
});

test("fuzz: mutated logs never throw and always format", { timeout: 120_000 }, () => {
  const next = seededRandom(0x5eed);
  const sources = ["c-packet-bounds", "c-unreleased", "infinite-loop", "unbounded-loop", "misaligned"].map(capturedLog);
  const alphabet = "0123456789:;()=R rfp-_@.\n'abcxyz";
  for (let round = 0; round < 2000; round++) {
    const chars = [...sources[Math.floor(next() * sources.length)]!];
    const edits = 1 + Math.floor(next() * 20);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(next() * chars.length);
      const choice = next();
      if (choice < 0.4) chars[at] = alphabet[Math.floor(next() * alphabet.length)]!;
      else if (choice < 0.7) chars.splice(at, Math.floor(next() * 40));
      else chars.splice(at, 0, ...chars.slice(Math.floor(next() * chars.length), Math.floor(next() * chars.length)));
    }
    const report = VerifierReport.fromLog(chars.join(""));
    assert.equal(typeof report.format(), "string");
    assert.equal(typeof JSON.stringify(report), "string");
  }
});

// ---------------------------------------------------------------------------
// The real kernel: each program is rejected for its reason, and the report says so.

const kernelExpectations: Record<RejectedProgramName, { category: VerifierFailureCategory; registers?: Record<string, string | RegExp | undefined>; message?: RegExp }> = {
  "packet-bounds": { category: "packet-bounds", registers: { R2: "pkt(r=0)", R3: "pkt_end()" }, message: /invalid access to packet/ },
  "null-pointer": { category: "null-pointer", registers: { R0: /^map_value_or_null\(/ } },
  "not-a-pointer": { category: "not-a-pointer", registers: { R1: "64" } },
  "infinite-loop": { category: "unbounded-loop", message: /infinite loop detected at insn 2/ },
  "unbounded-loop": { category: "unbounded-loop", message: /BPF program is too large/ },
  "too-many-instructions": { category: "too-many-instructions", message: /BPF program is too large/ },
  "too-many-branches": { category: "too-many-instructions", message: /jumps is too complex/ },
  "stack-access": { category: "stack-access", registers: { R10: "fp0" }, message: /invalid read from stack R10 off=8/ },
  "stack-access-indirect": { category: "stack-access", registers: { R2: "fp8" } },
  "stack-access-write": { category: "stack-access", message: /invalid write to stack/ },
  "stack-limit": { category: "stack-access", message: /combined stack size/ },
  "uninitialized-register": { category: "uninitialized-register", registers: { R0: "0" }, message: /^R3 !read_ok$/ },
  "helper-not-allowed": { category: "helper-not-allowed", registers: { R1: "1", R2: "0" }, message: /cannot use helper bpf_redirect/ },
  "helper-unknown": { category: "helper-not-allowed", message: /unknown#99999/ },
  "helper-license": { category: "helper-not-allowed", message: /GPL-restricted/ },
  "context-access": { category: "context-access", registers: { R1: "ctx()" } },
  "return-value": { category: "return-value", registers: { R0: "7" } },
  "argument-type": { category: "argument-type", registers: { R1: "0", R2: "fp-4" } },
  misaligned: { category: "misaligned", registers: { R2: "pkt(r=0)" } },
  "pointer-arithmetic": { category: "pointer-arithmetic", registers: { R1: "ctx()" } },
  // The call to bpf_ringbuf_reserve left R1–R5 unreadable.
  "unreleased-reference": { category: "unreleased-reference", registers: { R0: "0", refs: "2", R1: undefined, R2: undefined }, message: /Unreleased reference/ },
};

for (const name of Object.keys(rejectedPrograms) as RejectedProgramName[]) {
  test(`kernel rejects "${name}" and the report says why`, (t) => {
    if (skipUnlessKernel(t, isRoot(), "loading programs needs root")) return;
    const { error, program } = rejectionOf(name);
    const report = verifierReport(error);
    const expected = kernelExpectations[name];
    assert.equal(report.category, expected.category, `${name}: ${report.message}`);
    if (program.failingInstruction === "somewhere") assert.ok(report.instruction !== undefined && report.instructionText);
    else assert.equal(report.instruction, program.failingInstruction);
    if (expected.message) assert.match(report.messageLines.join("\n"), expected.message);
    for (const [register, value] of Object.entries(expected.registers ?? {})) {
      const actual = report.registers?.values[register];
      if (value === undefined) {
        assert.ok(!(register in (report.registers?.values ?? {})), `${name}: ${register} should not be shown`);
        continue;
      }
      if (value instanceof RegExp) assert.match(actual ?? "", value, `${name}: ${register}`);
      else assert.equal(actual, value, `${name}: ${register}`);
    }
    const text = formatVerifierError(error);
    assert.ok(text?.includes(report.title));
    assert.ok(text?.includes(report.message));
    if (report.instruction !== undefined) assert.ok(text?.includes(`${report.instruction}: ${report.instructionText}`));
  });
}

test("kernel: verbose (level 2) logs give the same reports as the default log", (t) => {
  if (skipUnlessKernel(t, isRoot(), "loading programs needs root")) return;
  for (const name of Object.keys(rejectedPrograms) as RejectedProgramName[]) {
    // These take seconds each and write megabytes of log at level 2.
    if (name === "unbounded-loop" || name === "too-many-instructions" || name === "too-many-branches") continue;
    const usual = verifierReport(rejectionOf(name).error);
    const program = rejectedPrograms[name]();
    const maps = program.maps?.() ?? {};
    try {
      assert.throws(() => Program.load(program.spec, { maps, logLevel: 2 }), (error: unknown) => {
        assert.ok(error instanceof VerifierError);
        assert.match(error.log, /Live regs before insn|mark_precise|combined stack size/, `${name}: a verbose log`);
        const verbose = error.report();
        assert.equal(verbose.category, usual.category, name);
        assert.equal(verbose.instruction, usual.instruction, name);
        assert.deepEqual(verbose.messageLines, usual.messageLines, name);
        assert.deepEqual(verbose.registers?.values, usual.registers?.values, name);
        return true;
      });
    } finally {
      for (const map of Object.values(maps)) map.close();
    }
  }
});

test("kernel: the leaked reservation is traced back to bpf_ringbuf_reserve", (t) => {
  if (skipUnlessKernel(t, isRoot(), "loading programs needs root")) return;
  const report = verifierReport(rejectionOf("unreleased-reference").error);
  assert.equal(report.related[0]?.instruction, 4);
  assert.equal(report.related[0]?.instructionText, "call bpf_ringbuf_reserve#131");
});

// ---------------------------------------------------------------------------
// C programs built by clang with -g: the report names the source line.

const cExpectations: Record<string, { category: VerifierFailureCategory; line: number; text: string; instruction: number }> = {
  packet_bounds: { category: "packet-bounds", line: 29, text: "if (ip->protocol == IPPROTO_TCP)", instruction: 6 },
  null_value: { category: "null-pointer", line: 40, text: "*count += 1;", instruction: 7 },
  unreleased: { category: "unreleased-reference", line: 55, text: "}", instruction: 16 },
  wrong_helper: { category: "helper-not-allowed", line: 60, text: "return bpf_redirect(skb->ifindex, 0);", instruction: 2 },
};

for (const [name, expected] of Object.entries(cExpectations)) {
  test(`kernel rejects C program ${name} and the report shows its source line`, (t) => {
    if (skipUnlessKernel(t, isRoot(), "loading programs needs root")) return;
    const spec = loadCollectionSpec(`${fixtures}rejected.o`);
    let error: unknown;
    try {
      Collection.load(spec, { programs: [name], btf: true }).close();
    } catch (caught) {
      error = caught;
    }
    assert.ok(error instanceof VerifierError, `${name} should be rejected by the verifier, got ${String(error)}`);
    // The kernel got line_info: its log carries the source comments.
    assert.match(error.log, /; .* @ rejected\.c:\d+/);
    const report = verifierReport(error, { lineInfo: spec.programs[name]!.lineInfo });
    // Collection attaches the program's line info, so report() finds the same line unaided.
    assert.deepEqual(error.report().source, report.source);
    assert.equal(report.category, expected.category);
    assert.equal(report.instruction, expected.instruction);
    assert.equal(report.source?.fileName, "rejected.c");
    assert.equal(report.source?.lineNumber, expected.line);
    assert.equal(report.source?.text, expected.text);
    assert.match(report.format(), new RegExp(`source: +rejected\\.c:${expected.line}: ${expected.text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    if (name !== "unreleased") {
      // From the log alone (no line info) the same line is found.
      assert.equal(VerifierReport.fromLog(error.log).source?.lineNumber, expected.line);
    } else {
      assert.equal(report.related[0]?.source?.text, "__u32 *slot = bpf_ringbuf_reserve(&events, sizeof(__u32), 0);");
    }
  });
}

test("a VerifierError from Program.load offers report()", (t) => {
  if (skipUnlessKernel(t, isRoot(), "loading programs needs root")) return;
  const { error } = rejectionOf("uninitialized-register");
  const report = error.report();
  assert.ok(report instanceof VerifierReport);
  assert.equal(report.category, "uninitialized-register");
  assert.equal(report.format(), verifierReport(error).format());
  assert.equal(formatVerifierError(new Error("not a verifier error")), undefined);
});

test("the VerifierError message skips loop state dumps and splits a message printed on a jump's line", () => {
  assert.equal(summarizeVerifierLog(capturedLog("infinite-loop")).message, "infinite loop detected at insn 2");
  assert.deepEqual(summarizeVerifierLog(capturedLog("too-many-instructions")), {
    instruction: VerifierReport.fromLog(capturedLog("too-many-instructions")).instruction,
    instructionText: VerifierReport.fromLog(capturedLog("too-many-instructions")).instructionText,
    message: "BPF program is too large. Processed 1000001 insn",
  });
  const error = new VerifierError("program load", 13, "EACCES", capturedLog("stack-limit"));
  assert.match(error.message, /verifier rejected the program with combined stack size of 2 calls is 800/);
});

test("the committed rejected.o is what build.sh makes from rejected.c", (t) => {
  try {
    execFileSync("clang", ["--version"], { stdio: "pipe" });
  } catch {
    skipUnlessTool(t, false, "clang is not installed; the committed object is used as it is");
    return;
  }
  const output = mkdtempSync(join(tmpdir(), "nb-verifier-fixtures-"));
  try {
    execFileSync(join(fixtures, "build.sh"), [output], { stdio: "pipe" });
    const sameClang = readFileSync(join(output, "clang-version.txt"), "utf8") === readFileSync(join(fixtures, "clang-version.txt"), "utf8");
    if (skipUnlessTool(t, sameClang, "another clang version than the fixtures were built with: its code may differ, so the bytes are not compared")) return;
    assert.ok(readFileSync(join(output, "rejected.o")).equals(readFileSync(join(fixtures, "rejected.o"))), "rejected.o differs from a fresh build; run test/fixtures/verifier/build.sh and commit it");
  } finally {
    rmSync(output, { recursive: true, force: true });
  }
});
