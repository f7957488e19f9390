import assert from "node:assert/strict";
import { test } from "node:test";
import { loadCollectionSpec } from "../../src/elf/collection-spec.js";
import { NetbpfError } from "../../src/sys/errors.js";
import { readFixture } from "./fixtures.js";
import { seededRandom } from "../support/seeded-random.js";

const random = seededRandom;

const fixtures = ["collection.o", "legacy.o", "core.o", "callbacks.o"].map((name) => ({ name, bytes: readFixture(name) }));

/** Section header table and the structured sections are where damage matters most; aim there often. */
function interestingOffsets(bytes: Buffer): number[] {
  const table = Number(bytes.readBigUInt64LE(40));
  const count = bytes.readUInt16LE(60);
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) {
    const at = table + i * 64;
    offsets.push(at + 24, at + 32, at + 40, at + 44, at + 56);
    offsets.push(Number(bytes.readBigUInt64LE(at + 24)));
  }
  return offsets.filter((o) => o < bytes.length);
}

function mutate(source: Buffer, next: () => number, targets: number[]): Buffer {
  const pick = (n: number) => Math.floor(next() * n);
  let bytes = Buffer.from(source);
  const steps = 1 + pick(4);
  for (let step = 0; step < steps; step++) {
    const place = next() < 0.5 ? targets[pick(targets.length)]! + pick(16) : pick(bytes.length);
    if (place >= bytes.length) continue;
    switch (pick(6)) {
      case 0: bytes[place] = pick(256); break;
      case 1: bytes[place]! ^= 1 << pick(8); break;
      case 2: if (place + 4 <= bytes.length) bytes.writeUInt32LE(Math.floor(next() * 2 ** 32), place); break;
      case 3: if (place + 4 <= bytes.length) bytes.writeUInt32LE([0, 1, 0xffffffff, 0x7fffffff, 8, 24, 64][pick(7)]!, place); break;
      case 4: bytes = bytes.subarray(0, place); break;
      default: bytes.fill(0, place, Math.min(bytes.length, place + 1 + pick(64))); break;
    }
  }
  return bytes;
}

test("mutated and truncated objects give a NetbpfError or a spec, never a crash or hang", () => {
  const seed = 0x5eed_e1f;
  const next = random(seed);
  const iterations = 3000;
  const outcomes = { parsed: 0, rejected: 0 };
  const messages = new Set<string>();
  for (const fixture of fixtures) {
    const targets = interestingOffsets(fixture.bytes);
    for (let i = 0; i < iterations / fixtures.length; i++) {
      const input = mutate(fixture.bytes, next, targets);
      const started = performance.now();
      try {
        loadCollectionSpec(input);
        outcomes.parsed++;
      } catch (error) {
        if (!(error instanceof NetbpfError)) {
          assert.fail(`seed ${seed}, ${fixture.name} iteration ${i}: ${error instanceof Error ? error.stack : String(error)}`);
        }
        assert.doesNotMatch(error.message, /unexpected problem/, `seed ${seed}, ${fixture.name} iteration ${i}: an unchecked failure slipped through`);
        outcomes.rejected++;
        messages.add(error.message.replace(/\d+/g, "#").slice(0, 60));
      }
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 1000, `seed ${seed}, ${fixture.name} iteration ${i} took ${elapsed.toFixed(0)} ms`);
    }
  }
  if (process.env.NETBPF_FUZZ_REPORT) console.log(outcomes, [...messages].join("\n"));
  // Both outcomes must occur, or the mutations are not exercising the parser.
  assert.ok(outcomes.parsed > 50, `parsed ${outcomes.parsed}`);
  assert.ok(outcomes.rejected > 500, `rejected ${outcomes.rejected}`);
  assert.ok(messages.size > 20, `only ${messages.size} distinct errors`);
});
