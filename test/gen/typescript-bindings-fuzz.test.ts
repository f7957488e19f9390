import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import ts from "typescript";
import { ElfFile } from "../../src/elf/elf-file.js";
import { loadCollectionSpec } from "../../src/elf/collection-spec.js";
import { generateTypeScriptBindings } from "../../src/gen/typescript-bindings.js";
import { NetbpfError } from "../../src/sys/errors.js";
import { seededRandom } from "../support/seeded-random.js";
import { genObject } from "./fixture.js";

test("objects with mutated BTF give bindings or a NetbpfError, never a crash or hang", () => {
  const seed = 0x6e6;
  const next = seededRandom(seed);
  const pick = (n: number) => Math.floor(next() * n);
  const original = readFileSync(genObject);
  const btf = ElfFile.parse(original).sections.find((section) => section.name === ".BTF")!;
  // The type section starts after the 24-byte header; string offsets and sizes live there.
  const start = btf.offset + 24;
  const end = btf.offset + btf.size;
  const outcomes = { generated: 0, refused: 0, unreadable: 0 };
  for (let i = 0; i < 400; i++) {
    const bytes = Buffer.from(original);
    for (let step = 1 + pick(3); step > 0; step--) {
      const place = start + pick(end - start - 4);
      switch (pick(4)) {
        case 0: bytes[place] = pick(256); break;
        case 1: bytes[place]! ^= 1 << pick(8); break;
        case 2: bytes.writeUInt32LE([0, 1, 2, 3, 0xffffffff, 0x7fffffff, 8, 64, 4096][pick(9)]!, place & ~3); break;
        default: bytes.writeUInt32LE(Math.floor(next() * 2 ** 32), place & ~3); break;
      }
    }
    let spec;
    try {
      spec = loadCollectionSpec(bytes);
    } catch {
      outcomes.unreadable++;
      continue;
    }
    const started = performance.now();
    try {
      const source = generateTypeScriptBindings(spec, { types: next() < 0.5 ? ["state_event"] : [] });
      assert.match(source, /export function load/);
      // Whatever names the BTF holds, the module must still parse (checked on a sample: parsing costs milliseconds).
      if (outcomes.generated % 4 === 0) {
        const { diagnostics } = ts.transpileModule(source, { reportDiagnostics: true, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
        assert.deepEqual(diagnostics?.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")), [], `seed ${seed}, iteration ${i}`);
      }
      outcomes.generated++;
    } catch (error) {
      if (!(error instanceof NetbpfError)) assert.fail(`seed ${seed}, iteration ${i}: ${error instanceof Error ? error.stack : String(error)}`);
      outcomes.refused++;
    }
    // A hang guard, not a timing claim: generous, since the machine may be busy and the first transpile warms TypeScript up.
    assert.ok(performance.now() - started < 10_000, `seed ${seed}, iteration ${i} took too long`);
  }
  if (process.env.NETBPF_FUZZ_REPORT) console.log(outcomes);
  // The mutations must reach the generator in both ways, or this tests nothing.
  assert.ok(outcomes.generated > 20, JSON.stringify(outcomes));
  assert.ok(outcomes.refused > 3, JSON.stringify(outcomes));
});
