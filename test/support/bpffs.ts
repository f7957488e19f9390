import { mkdirSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { bpffsPath } from "../../src/sys/mounts.js";

/** A fresh folder in bpffs for one test's pins, removed (with its pins) by remove(). */
export function bpffsFolder(prefix: string): { path: string; remove(): void } {
  const path = `${bpffsPath()}/netbpf-test-${prefix}-${randomBytes(4).toString("hex")}`;
  mkdirSync(path);
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** The same as bpffsFolder, shaped for tests that name it `release`. */
export function bpffsForTest(): { path: string; release: () => void } {
  const folder = bpffsFolder("link");
  return { path: folder.path, release: folder.remove };
}
