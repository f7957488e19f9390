/**
 * The package's root export list, pinned: a name that disappears (for example
 * because two modules export the same name and one hides the other) or appears
 * unannounced fails here. After a deliberate change, regenerate the list:
 *   node -e 'import("./dist/src/index.js").then((m) => console.log(Object.keys(m).sort().join("\n")))' > test/fixtures/root-exports.txt
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as netbpf from "../src/index.js";

const pinned = readFileSync(fileURLToPath(new URL("../../test/fixtures/root-exports.txt", import.meta.url)), "utf8").trim().split("\n");

test("the root export list is the pinned one", () => {
  const names = Object.keys(netbpf).sort();
  assert.deepEqual(names.filter((name) => !pinned.includes(name)), [], "exported but not in test/fixtures/root-exports.txt");
  assert.deepEqual(pinned.filter((name) => !names.includes(name)), [], "pinned but no longer exported");
});

test("no export shadows a JavaScript global, and internals stay unexported", () => {
  const globals = new Set(Object.getOwnPropertyNames(globalThis));
  assert.deepEqual(Object.keys(netbpf).filter((name) => globals.has(name)), []);
  for (const internal of ["Poller", "Readiness", "patchMapReferences", "Map"]) assert.ok(!(internal in netbpf), internal);
});

test("LinkType is pcap's link-layer type; the BPF link type is BpfLinkType", () => {
  assert.equal(netbpf.LinkType.ETHERNET, 1);
  assert.equal(netbpf.LinkType.LINUX_SLL2, 276);
  assert.equal(netbpf.BpfLinkType.Tcx, 11);
});
