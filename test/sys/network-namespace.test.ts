import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readlinkSync } from "node:fs";
import { UsageError } from "../../src/sys/errors.js";
import { inNetworkNamespace } from "../../src/sys/network-namespace.js";
import { interfaceIndex } from "../../src/sys/socket.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";

test("inNetworkNamespace runs code in another namespace and always comes back", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces")) return;
  const name = `nb-link-ns-${process.pid}`;
  spawnSync("ip", ["netns", "add", name]);
  t.after(() => spawnSync("ip", ["netns", "del", name]));
  const here = readlinkSync("/proc/thread-self/ns/net");
  const there = inNetworkNamespace(name, () => readlinkSync("/proc/thread-self/ns/net"));
  assert.notEqual(there, here);
  assert.throws(() => inNetworkNamespace(name, () => { throw new Error("inside"); }), /inside/);
  assert.equal(readlinkSync("/proc/thread-self/ns/net"), here);
  // A fresh namespace has only its loopback interface.
  assert.equal(inNetworkNamespace(name, () => interfaceIndex("lo")), 1);
  assert.throws(() => inNetworkNamespace("nb-link-none-such", () => 0), (e: Error) => e instanceof UsageError && /ip netns list/.test(e.message));
});
