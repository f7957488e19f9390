import type { TestContext } from "node:test";

/** True when CI demands that kernel-dependent tests run instead of skipping. */
export const requireKernel = process.env.NETBPF_REQUIRE_KERNEL === "1";

/**
 * Skip the current test because the kernel lacks something, unless
 * NETBPF_REQUIRE_KERNEL=1, in which case the missing feature is a failure.
 */
export function skipUnlessKernel(t: TestContext, available: boolean, reason: string): boolean {
  if (available) return false;
  if (requireKernel) throw new Error(`kernel feature unavailable (NETBPF_REQUIRE_KERNEL=1): ${reason}`);
  t.skip(reason);
  return true;
}

export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/**
 * Skip a test that needs root (bpf(2), namespaces, attaching) when run as an
 * unprivileged user, saying what it needs root for; a failure under
 * NETBPF_REQUIRE_KERNEL=1.
 */
export function skipUnlessRoot(t: TestContext, what: string): boolean {
  return skipUnlessKernel(t, isRoot(), `needs root ${what}`);
}

/**
 * Skip because a build tool (clang) is missing, unless NETBPF_REQUIRE_KERNEL=1:
 * CI installs the tools, so there a missing one is a failure.
 */
export function skipUnlessTool(t: TestContext, available: boolean, reason: string): boolean {
  if (available) return false;
  if (requireKernel) throw new Error(`tool unavailable (NETBPF_REQUIRE_KERNEL=1): ${reason}`);
  t.skip(reason);
  return true;
}
