/**
 * A netbpf state folder of a test's own in bpffs (never the default
 * /sys/fs/bpf/netbpf), and its removal: links detached through the state
 * store first, then whatever is left deleted.
 */
import { randomBytes } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { StateStore } from "../../src/state/state-store.js";
import { bpffsPath } from "../../src/sys/mounts.js";

/** A fresh path `<bpffs>/netbpf-test-<prefix>-<random>` (not created: the store creates it when needed). */
export function testStateRoot(prefix: string): string {
  return `${bpffsPath()}/netbpf-test-${prefix}-${randomBytes(4).toString("hex")}`;
}

/** The environment for a netbpf child process that must use `root`. */
export function stateEnvironment(root: string): NodeJS.ProcessEnv {
  return { ...process.env, NETBPF_STATE_DIR: root };
}

/** Detaches and removes everything under `root`; safe when it does not exist. */
export function removeStateRoot(root: string): void {
  if (!existsSync(root)) return;
  try {
    StateStore.open({ root }).reset();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
