import { mkdtempSync, readFileSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { libcMount, libcUmount2 } from "../../src/sys/socket.js";

/**
 * A bpffs directory for pins: the system's bpffs when one is mounted,
 * otherwise a private mount in a temporary directory. Call release() after.
 */
export function bpffsForTest(): { path: string; release: () => void } {
  const mounts = readFileSync("/proc/mounts", "utf8").split("\n").map((l) => l.split(" "));
  const existing = mounts.find((f) => f[2] === "bpf")?.[1];
  if (existing) return { path: existing, release: () => {} };
  const directory = mkdtempSync(join(tmpdir(), "nb-link-bpffs-"));
  if (libcMount("bpf", directory, "bpf", 0, "mode=0700") !== 0) {
    rmdirSync(directory);
    throw new Error("cannot mount a bpffs for the test");
  }
  return {
    path: directory,
    release: () => {
      libcUmount2(directory, 2);
      rmdirSync(directory);
    },
  };
}
