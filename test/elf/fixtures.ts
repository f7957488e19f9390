import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** test/fixtures/c in the source tree (tests run from dist/test/…). */
export const fixtureDirectory = fileURLToPath(new URL("../../../test/fixtures/c/", import.meta.url));

export function fixturePath(name: string): string {
  return fixtureDirectory + name;
}

export function readFixture(name: string): Buffer {
  return readFileSync(fixturePath(name));
}
