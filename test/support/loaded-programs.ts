import { listPrograms } from "../../src/core/loaded-objects.js";
import type { ProgramInfo } from "../../src/sys/object-info.js";

/**
 * The loaded programs `matches` picks, once none are left or `timeoutMs` has passed.
 * A closed program or link is not always gone at once: the kernel may drop the last
 * reference after an RCU grace period or from a work queue.
 */
export async function programsLeftLoaded(matches: (program: ProgramInfo) => boolean, timeoutMs = 5000): Promise<ProgramInfo[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const left = listPrograms().filter(matches);
    if (left.length === 0 || Date.now() >= until) return left;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
