import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Btf } from "../../src/btf/btf.js";
import { parseBtfExt } from "../../src/btf/btf-ext.js";
import { applyCoreRelocation, corePoisonImmediate } from "../../src/btf/apply-core-relocation.js";
import { resolveCoreRelocation } from "../../src/btf/core-relocation.js";
import { kernelBtfPath, loadKernelBtf } from "../../src/btf/kernel-btf.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { fixtureDirectory } from "./support/bpftool-raw.js";

function haveTools(): boolean {
  try {
    for (const tool of ["clang", "llvm-objcopy", "bpftool"]) execFileSync(tool, ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const programSections: Record<string, string> = { sample_program: "socket", helper_function: ".text" };

/**
 * Differential test against libbpf: build the fixture object, let libbpf (through
 * `bpftool -d prog load`) relocate it against the running kernel and log every patch,
 * then resolve and patch the same instructions ourselves and compare. The program is
 * not meant to pass the verifier; the load fails after relocation and pins nothing.
 */
test("CO-RE relocation results agree with libbpf's, instruction by instruction", (t) => {
  const available = isRoot() && existsSync(kernelBtfPath) && existsSync("/sys/fs/bpf") && haveTools();
  if (skipUnlessKernel(t, available, "needs root, bpffs, kernel BTF, clang, llvm-objcopy and bpftool")) return;
  const directory = mkdtempSync(join(tmpdir(), "netbpf-btf-"));
  const pin = `/sys/fs/bpf/nb-btf-${process.pid}-${Date.now()}`;
  try {
    const object = join(directory, "core-sample.o");
    execFileSync("clang", ["-target", "bpf", "-g", "-O2", "-c", join(fixtureDirectory, "core-sample.c"), "-o", object]);
    execFileSync("llvm-objcopy", [
      "--dump-section", `.BTF=${join(directory, "btf")}`, "--dump-section", `.BTF.ext=${join(directory, "btf.ext")}`,
      "--dump-section", `socket=${join(directory, "socket")}`, "--dump-section", `.text=${join(directory, "text")}`, object,
    ]);
    const load = spawnSync("bpftool", ["-d", "prog", "load", object, pin], { encoding: "utf8" });
    const log = `${load.stdout}\n${load.stderr}`;

    const local = Btf.parse(readFileSync(join(directory, "btf")));
    const ext = parseBtfExt(readFileSync(join(directory, "btf.ext")), local);
    const patched: Record<string, Uint8Array> = { socket: new Uint8Array(readFileSync(join(directory, "socket"))), ".text": new Uint8Array(readFileSync(join(directory, "text"))) };
    const kernel = loadKernelBtf();
    for (const [section, records] of ext.coreRelocations) {
      for (const record of records) applyCoreRelocation(patched[section]!, record.instructionOffset / 8, resolveCoreRelocation(local, record, kernel));
    }

    let compared = 0;
    const patchPattern = /prog '(\w+)': relo #\d+: patched insn #(\d+) \(([A-Z0-9/]+)\) (imm64|imm|off|mem_sz) (\d+) -> (\d+)/g;
    for (const match of log.matchAll(patchPattern)) {
      const [, program, index, , field, , after] = match;
      const bytes = patched[programSections[program!]!]!;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const at = Number(index) * 8;
      const ours =
        field === "off" ? BigInt(view.getInt16(at + 2, true))
        : field === "imm" ? BigInt(view.getUint32(at + 4, true))
        : field === "imm64" ? BigInt(view.getUint32(at + 4, true)) | (BigInt(view.getUint32(at + 12, true)) << 32n)
        : BigInt({ 0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8 }[bytes[at]! & 0x18]!);
      assert.equal(ours, BigInt(after!), `${program} insn #${index} ${field}: ${match[0]}`);
      compared++;
    }
    for (const match of log.matchAll(/prog '(\w+)': relo #\d+: substituting insn #(\d+) w\/ invalid insn/g)) {
      const bytes = patched[programSections[match[1]!]!]!;
      const at = Number(match[2]) * 8;
      assert.equal(bytes[at], 0x85, `insn #${match[2]} poisoned like libbpf`);
      assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getInt32(at + 4, true), corePoisonImmediate);
      compared++;
    }
    const records = [...ext.coreRelocations.values()].reduce((sum, list) => sum + list.length, 0);
    assert.ok(compared >= records, `compared ${compared} patches with libbpf's log (${records} relocations); log:\n${log.slice(-2000)}`);
  } finally {
    rmSync(directory, { recursive: true, force: true });
    rmSync(pin, { force: true });
  }
});
