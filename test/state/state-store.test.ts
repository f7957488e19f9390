import assert from "node:assert/strict";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { test } from "node:test";
import { BpfMap } from "../../src/core/map.js";
import { Program } from "../../src/core/program.js";
import { attachTcx } from "../../src/link/tcx.js";
import { AttachType, MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { programQuery } from "../../src/sys/bpf.js";
import { UsageError } from "../../src/sys/errors.js";
import { StateStore } from "../../src/state/state-store.js";
import { exit, movImmediate, program } from "../support/bytecode.js";
import { runCli } from "../support/cli.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { Testbed } from "../support/testbed.js";
import { testStateRoot } from "../support/state-root.js";

const stateRoot = () => testStateRoot("state");

function passProgram(): Program {
  // TCX_NEXT (-1): let whatever else is attached decide.
  return Program.load({ type: ProgramType.SchedCls, name: "nb_state_pass", instructions: program(movImmediate(0, -1), exit()) });
}

test("components keep pins and a manifest; status reads them back; a manifest rewrite replaces it whole", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for bpffs")) return;
  const root = stateRoot();
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const store = StateStore.open({ root });
  assert.deepEqual(store.list(), [], "an absent root has no components");
  const component = store.component("firewall", "veth0");
  {
    using _lock = component.lock();
    using map = BpfMap.create({ type: MapType.Hash, keySize: 4, valueSize: 8, maxEntries: 16, name: "nb_rules" });
    map.put(Buffer.from([1, 0, 0, 0]), Buffer.alloc(8, 7));
    component.pin("rules", map);
    const written = component.writeManifest({ summary: "1 rule", attachments: [{ hook: "xdp", mechanism: "xdp generic", interface: "veth0", pin: "xdp-link" }], config: { rules: [1] } });
    assert.equal(written.kind, "firewall");
    assert.equal(written.createdAt, written.updatedAt);
  }
  const statuses = store.list();
  assert.equal(statuses.length, 1);
  assert.equal(statuses[0]!.manifest?.summary, "1 rule");
  assert.deepEqual(statuses[0]!.manifest?.config, { rules: [1] });
  assert.deepEqual(statuses[0]!.pins.map((p) => [p.name, p.kind]), [["rules", "map"]]);
  // The pinned map is the same object: its contents survive this process's handles.
  using reopened = BpfMap.openPinned(component.pinPath("rules"));
  assert.deepEqual(reopened.get(Buffer.from([1, 0, 0, 0])), Buffer.alloc(8, 7));
  // A larger manifest replaces the old one (different size, so a new map) and keeps createdAt.
  const before = component.readManifest()!;
  const big = "x".repeat(10_000);
  const after = component.writeManifest({ summary: "2 rules", attachments: [], config: { big } });
  assert.equal(after.createdAt, before.createdAt);
  assert.equal((component.readManifest() as { config: { big: string } }).config.big.length, 10_000);
  assert.deepEqual(component.pins(), ["rules"], "no staging pins are left behind");
  assert.throws(() => component.writeManifest({ summary: "", attachments: [], config: "y".repeat(2 << 20) }), /more than/);
});

test("a component's lock excludes a second writer until released", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for bpffs")) return;
  const root = stateRoot();
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const component = StateStore.open({ root }).component("limit", "lo");
  const first = component.lock();
  assert.throws(() => component.lock(), /another netbpf command is changing it/);
  first.release();
  component.lock().release();
});

test("names are checked: no slashes, no traversal, roots must be on bpffs", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for bpffs")) return;
  const store = StateStore.open({ root: stateRoot() });
  for (const bad of ["../x", "a/b", "", ".hidden", "x".repeat(200), "a b"]) {
    assert.throws(() => store.component("firewall", bad), UsageError, bad);
  }
  assert.throws(() => store.reset("../.."), UsageError);
  assert.throws(() => StateStore.open({ root: "/tmp/netbpf-state" }), /not on a bpffs mount/);
  assert.throws(() => StateStore.open({ root: "relative" }), /not an absolute path/);
  assert.ok(store.component("lb", "[2001:db8::1]:443"), "IPv6 VIP names are allowed");
  // bpffs refuses dots in names; they are stored encoded and listed decoded.
  const vip = store.component("lb", "192.0.2.10:80");
  t.after(() => rmSync(store.root, { recursive: true, force: true }));
  vip.writeManifest({ summary: "vip", attachments: [], config: {} });
  assert.deepEqual(store.list().map((c) => [c.kind, c.name, c.manifest?.name]), [["lb", "192.0.2.10:80", "192.0.2.10:80"]]);
  store.reset();
});

test("reset detaches pinned links at once, even while a process holds them, removes its root and nothing else", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces, tcx and bpffs")) return;
  const root = stateRoot();
  const other = stateRoot();
  const bed = Testbed.create("state");
  t.after(() => {
    bed.destroy();
    rmSync(root, { recursive: true, force: true });
    rmSync(other, { recursive: true, force: true });
  });
  using pass = passProgram();
  using link = bed.inNamespace(bed.a, () => attachTcx(pass, { interface: bed.a.interface, direction: "ingress" }));
  const store = StateStore.open({ root });
  const component = store.component("mark", bed.a.interface);
  component.pin("tc-ingress", link);
  component.pin("program", pass);
  component.writeManifest({ summary: "test", attachments: [{ hook: "tc ingress", mechanism: link.mechanism, interface: bed.a.interface, pin: "tc-ingress" }], config: {} });
  const keep = StateStore.open({ root: other }).component("firewall", "keep");
  keep.writeManifest({ summary: "keep me", attachments: [], config: {} });

  const status = store.list()[0]!;
  const linkPin = status.pins.find((p) => p.name === "tc-ingress")!;
  assert.equal(linkPin.kind, "link");
  assert.equal(linkPin.attached, true);
  assert.equal(linkPin.id, link.id);
  assert.equal(status.pins.find((p) => p.name === "program")!.kind, "program");
  const query = () => bed.inNamespace(bed.a, () => programQuery(link.interfaceIndex, AttachType.TcxIngress).programIds);
  assert.deepEqual(query(), [pass.info().id]);

  const removed = store.reset();
  assert.deepEqual(removed.map((c) => `${c.kind}/${c.name}`), [`mark/${bed.a.interface}`]);
  assert.deepEqual(query(), [], "the link is detached although this process still holds its descriptor");
  assert.equal(existsSync(root), false, "an emptied root is removed");
  assert.equal(StateStore.open({ root: other }).list()[0]?.manifest?.summary, "keep me", "another root is untouched");
});

test("netbpf status and reset on the command line", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for bpffs")) return;
  const root = stateRoot();
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const empty = runCli(["status", "--state-dir", root]);
  assert.equal(empty.status, 0, empty.stderr);
  assert.match(empty.stdout, /nothing installed/);
  const component = StateStore.open({ root }).component("firewall", "nbtest0");
  component.writeManifest({ summary: "3 rules, drop by default", attachments: [{ hook: "xdp", mechanism: "xdp generic", interface: "nbtest0" }], config: {} });
  mkdirSync(StateStore.open({ root }).component("limit", "broken").path, { recursive: true });

  const table = runCli(["status", "--state-dir", root]);
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /firewall\s+nbtest0\s+xdp on nbtest0 \(xdp generic\)\s+3 rules, drop by default\s+ok/);
  assert.match(table.stdout, /limit\s+broken\s+.*no manifest/);
  const json = runCli(["status", "--json", "--state-dir", root]).stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(json.map((c) => [c.kind, c.name, c.health]), [["firewall", "nbtest0", "ok"], ["limit", "broken", "no manifest (an interrupted install?)"]]);

  const kindOnly = runCli(["reset", "--kind", "limit", "--state-dir", root]);
  assert.equal(kindOnly.status, 0, kindOnly.stderr);
  assert.match(kindOnly.stdout, /removed limit broken/);
  assert.equal(StateStore.open({ root }).list().length, 1);
  const all = runCli(["reset", "--json", "--state-dir", root]);
  assert.deepEqual(all.stdout.trim().split("\n").map((l) => JSON.parse(l).name), ["nbtest0"]);
  assert.equal(existsSync(root), false);
  const bad = runCli(["status", "--state-dir", "/tmp"]);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /^netbpf: open netbpf state: \/tmp is not on a bpffs mount/);
});
