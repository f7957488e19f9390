/** Child processes the benches start. */
import type { ChildProcess } from "node:child_process";

/** Ends a child with SIGINT (as Ctrl-C would), SIGKILL after 10 s, and waits for it to exit. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGINT");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}
