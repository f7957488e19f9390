import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadCollectionSpec } from "../../src/elf/collection-spec.js";
import { generateTypeScriptBindings } from "../../src/gen/typescript-bindings.js";
import { genFixtureDirectory } from "./fixture.js";
import { skipUnlessTool } from "../support/kernel.js";

function clangAvailable(): boolean {
  try {
    execFileSync("clang", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

test("the committed gen fixtures are what build.sh produces from the sources", (t) => {
  if (skipUnlessTool(t, clangAvailable(), "clang is not installed; the committed objects are used as they are")) return;
  const output = mkdtempSync(join(tmpdir(), "nb-gen-fixtures-"));
  try {
    execFileSync(join(genFixtureDirectory, "build.sh"), [output], { stdio: "pipe" });
    const sameCompiler = readFileSync(join(output, "clang-version.txt"), "utf8") === readFileSync(join(genFixtureDirectory, "clang-version.txt"), "utf8");
    for (const name of ["gen.o", "without-btf.o"]) {
      const rebuilt = readFileSync(join(output, name));
      const committed = readFileSync(join(genFixtureDirectory, name));
      if (sameCompiler) {
        assert.ok(rebuilt.equals(committed), `${name} differs from a fresh build; run test/fixtures/gen/build.sh and commit the objects`);
      } else if (name === "gen.o") {
        // Another clang may emit different code, but the types (hence the bindings) must agree.
        const bindings = (bytes: Buffer) => generateTypeScriptBindings(loadCollectionSpec(bytes), { embed: undefined, types: ["state_event"] });
        assert.equal(bindings(rebuilt), bindings(committed));
      }
    }
  } finally {
    rmSync(output, { recursive: true, force: true });
  }
});
