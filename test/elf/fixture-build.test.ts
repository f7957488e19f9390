import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadCollectionSpec, type CollectionSpec } from "../../src/elf/collection-spec.js";
import { ElfFormatError } from "../../src/elf/elf-format-error.js";
import { fixtureDirectory, fixturePath, readFixture } from "./fixtures.js";
import { skipUnlessTool } from "../support/kernel.js";

function clangAvailable(): boolean {
  try {
    execFileSync("clang", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** What the objects mean to the loader: programs with sections and types, and map shapes. */
function shape(spec: CollectionSpec): unknown {
  return {
    programs: Object.values(spec.programs).map((p) => [p.name, p.section, p.type, p.functions.map((f) => f.name), p.mapReferences.map((r) => r.map)]).sort(),
    maps: Object.values(spec.maps).map((m) => [m.name, m.type, m.keySize, m.valueSize, m.maxEntries, m.flags, m.pinning, m.initialSlots]).sort(),
    license: spec.license,
  };
}

test("the committed fixture objects are what build.sh produces from the sources", (t) => {
  if (skipUnlessTool(t, clangAvailable(), "clang is not installed; the committed objects are used as they are")) return;
  const output = mkdtempSync(join(tmpdir(), "nb-elf-fixtures-"));
  try {
    execFileSync(join(fixtureDirectory, "build.sh"), [output], { stdio: "pipe" });
    const sameCompiler = readFileSync(join(output, "clang-version.txt"), "utf8") === readFileSync(fixturePath("clang-version.txt"), "utf8");
    for (const name of ["collection.o", "legacy.o", "core.o", "sections.o", "callbacks.o"]) {
      const rebuilt = readFileSync(join(output, name));
      if (sameCompiler) {
        // build.sh maps source paths, so the same clang gives the same bytes wherever the checkout is.
        assert.ok(rebuilt.equals(readFixture(name)), `${name} differs from a fresh build; run test/fixtures/c/build.sh and commit the objects`);
      } else {
        // Another clang version may schedule code differently; what the loader reads must still agree.
        assert.deepEqual(shape(loadCollectionSpec(rebuilt)), shape(loadCollectionSpec(readFixture(name))), name);
      }
    }
  } finally {
    rmSync(output, { recursive: true, force: true });
  }
});

test("objects built without -g or for big-endian BPF get a clear error", (t) => {
  if (skipUnlessTool(t, clangAvailable(), "clang is not installed")) return;
  const output = mkdtempSync(join(tmpdir(), "nb-elf-variants-"));
  try {
    const include = `-I/usr/include/${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux-gnu`;
    const build = (target: string, debug: boolean, name: string) => {
      const args = ["-O2", "-target", target, include, "-c", fixturePath("collection.c"), "-o", join(output, name)];
      if (debug) args.unshift("-g");
      execFileSync("clang", args, { stdio: "pipe" });
      return readFileSync(join(output, name));
    };
    assert.throws(() => loadCollectionSpec(build("bpf", false, "no-debug.o")), (e: unknown) => e instanceof ElfFormatError && /need the object's BTF.*clang -g/.test(e.message));
    assert.throws(() => loadCollectionSpec(build("bpfeb", true, "big-endian.o")), (e: unknown) => e instanceof ElfFormatError && /big-endian/.test(e.message));
    // Without BTF, objects with only legacy maps still load.
    const legacy = execFileSync("clang", ["-O2", "-target", "bpf", include, "-c", fixturePath("legacy.c"), "-o", "-"]);
    const spec = loadCollectionSpec(legacy);
    assert.equal(spec.btf, undefined);
    assert.deepEqual(Object.keys(spec.maps).sort(), [".bss", ".rodata", "legacy_counts", "legacy_hash"]);
    assert.deepEqual(Object.keys(spec.dataSections[".rodata"]!.variables), ["weights"]);
  } finally {
    rmSync(output, { recursive: true, force: true });
  }
});
