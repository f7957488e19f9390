import { closeSync, openSync } from "node:fs";
import { expectFunction, expectString } from "./argument-checks.js";
import { UsageError } from "./errors.js";
import { check, libcClose, libcGetsockopt, libcSetns, libcSocket } from "./libc.js";

const cloneNewNet = 0x40000000;

/**
 * Runs `action` with the calling thread inside a network namespace — given
 * by name (as `ip netns` names it, under /run/netns) or by path (e.g.
 * /proc/<pid>/ns/net) — and returns to the original namespace afterwards,
 * also when `action` throws. Sockets, interface lookups and tc/XDP attaches
 * made by `action` act in that namespace; links made there keep working
 * after it returns. `action` must be synchronous.
 */
export function inNetworkNamespace<T>(namespace: string, action: () => T): T {
  expectString("enter network namespace", "namespace", namespace);
  expectFunction("enter network namespace", "action", action);
  const operation = `enter network namespace ${namespace}`;
  const path = namespace.includes("/") ? namespace : `/run/netns/${namespace}`;
  if (!namespace.includes("/") && !/^[A-Za-z0-9_.-]+$/.test(namespace)) {
    throw new UsageError(operation, `${JSON.stringify(namespace)} is not a network namespace name`, "list them with `ip netns list`");
  }
  let target: number;
  try {
    target = openSync(path, "r");
  } catch (error) {
    throw new UsageError(operation, `there is no network namespace at ${path} (${(error as NodeJS.ErrnoException).code ?? "unreadable"})`, "list them with `ip netns list`");
  }
  let original: number;
  try {
    original = openSync("/proc/thread-self/ns/net", "r");
  } catch (error) {
    closeSync(target);
    throw error;
  }
  try {
    try {
      check(operation, libcSetns(target, cloneNewNet), "needs root or CAP_SYS_ADMIN; the path must be a network namespace");
    } finally {
      closeSync(target);
    }
    try {
      return action();
    } finally {
      check("return to the original network namespace", libcSetns(original, cloneNewNet));
    }
  } finally {
    closeSync(original);
  }
}


/**
 * The kernel's cookie of the calling thread's network namespace (SO_NETNS_COOKIE,
 * Linux 5.14): the value bpf_get_netns_cookie() gives programs for sockets of this namespace.
 */
export function networkNamespaceCookie(): bigint {
  const socketOptionNetnsCookie = 71;
  const fd = check("socket", libcSocket(1 /* AF_UNIX */, 2 /* SOCK_DGRAM */ | 0o2000000 /* SOCK_CLOEXEC */, 0));
  try {
    const value = Buffer.alloc(8);
    check("getsockopt SO_NETNS_COOKIE", libcGetsockopt(fd, 1 /* SOL_SOCKET */, socketOptionNetnsCookie, value, [8]));
    return value.readBigUInt64LE(0);
  } finally {
    libcClose(fd);
  }
}
