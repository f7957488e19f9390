import { test } from "node:test";
import assert from "node:assert/strict";
import { BpfMap } from "../../src/core/map.js";
import { Program } from "../../src/core/program.js";
import { MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { u32 } from "../../src/core/codec.js";
import { runCli } from "../support/cli.js";
import { skipUnlessRoot } from "../support/kernel.js";

test("netbpf map list/show/dump see a map this process created", (t) => {
  if (skipUnlessRoot(t, "to create BPF maps and programs")) return;
  using map = BpfMap.create({ type: MapType.Hash, key: u32, value: u32, maxEntries: 8, name: "cli_test_map" });
  map.put(7, 0x01020304);
  const id = map.id;
  const list = runCli(["map", "list", "--json"]);
  assert.equal(list.status, 0, list.stderr);
  const rows = list.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const row = rows.find((r) => r.id === id);
  assert.deepEqual({ name: row.name, type: row.type, keySize: row.keySize, valueSize: row.valueSize, maxEntries: row.maxEntries }, { name: "cli_test_map", type: "Hash", keySize: 4, valueSize: 4, maxEntries: 8 });
  const dump = runCli(["map", "dump", String(id), "--json"]);
  assert.equal(dump.status, 0, dump.stderr);
  assert.deepEqual(JSON.parse(dump.stdout.trim()), { key: "07000000", value: "04030201" });
  const show = runCli(["map", "show", String(id)]);
  assert.match(show.stdout, /name\s+cli_test_map/);
});

test("netbpf prog list/show see a loaded program", (t) => {
  if (skipUnlessRoot(t, "to create BPF maps and programs")) return;
  using program = Program.load({ type: ProgramType.SocketFilter, instructions: Buffer.from("b7000000000000009500000000000000", "hex"), name: "cli_test_prog" });
  const id = program.id;
  const show = runCli(["prog", "show", String(id), "--json"]);
  assert.equal(show.status, 0, show.stderr);
  const info = JSON.parse(show.stdout);
  assert.equal(info.name, "cli_test_prog");
  assert.equal(info.type, "SocketFilter");
  const list = runCli(["prog", "list"]);
  assert.match(list.stdout, new RegExp(`^${id}\\s+SocketFilter\\s+cli_test_prog`, "m"));
});

test("object commands reject bad ids clearly", (t) => {
  if (skipUnlessRoot(t, "to create BPF maps and programs")) return;
  const bad = runCli(["prog", "show", "abc"]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /"abc" is not an id/);
  const missing = runCli(["map", "dump", "2147483647"]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no map with id 2147483647/);
  const links = runCli(["link", "list", "--json"]);
  assert.equal(links.status, 0, links.stderr);
});

test("netbpf map dump decodes keys and values with the map's BTF", async (t) => {
  if (skipUnlessRoot(t, "to create BPF maps and programs")) return;
  const { fileURLToPath } = await import("node:url");
  const { loadCollectionSpec } = await import("../../src/elf/collection-spec.js");
  const { Collection } = await import("../../src/core/collection.js");
  const object = fileURLToPath(new URL("../../../test/fixtures/gen/gen.o", import.meta.url));
  using collection = Collection.load(loadCollectionSpec(object), { btf: true });
  const counters = collection.maps.counters!;
  const value = Buffer.alloc(8);
  value.writeBigUInt64LE(12345n);
  counters.put(Buffer.from([3, 0, 0, 0]), value);
  const dump = runCli(["map", "dump", String(counters.id), "--json"]);
  assert.equal(dump.status, 0, dump.stderr);
  const rows = dump.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(rows.length, 5);
  assert.deepEqual(rows.find((r) => r.key === 3), { key: 3, value: 12345 });
  const raw = runCli(["map", "dump", String(counters.id), "--json", "--raw"]);
  assert.ok(raw.stdout.includes('"key":"03000000","value":"3930000000000000"'));
  const flows = collection.maps.flows!;
  const key = Buffer.from([127, 0, 0, 1, 0x50, 0, 6, 0]);
  const stats = Buffer.alloc(flows.valueSize);
  stats.writeBigUInt64LE(7n, 0);
  flows.put(key, stats);
  const structs = runCli(["map", "dump", String(flows.id), "--json"]);
  assert.equal(structs.status, 0, structs.stderr);
  const [row] = structs.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(row.key, { addr: 0x0100007f, port: 80, proto: 6, pad: 0 });
  assert.equal(row.value.packets, 7);
});

test("netbpf link list names the attach type, the direction and the tracepoint", async (t) => {
  const { isRoot, skipUnlessKernel } = await import("../support/kernel.js");
  if (skipUnlessKernel(t, isRoot(), "needs root to create an interface and attach programs")) return;
  const { execFileSync } = await import("node:child_process");
  const { attachTcx } = await import("../../src/link/tcx.js");
  const { attachTracepoint } = await import("../../src/link/tracepoint.js");
  const { probeTcx, probePerfEventLink } = await import("../../src/features/features.js");
  if (skipUnlessKernel(t, probeTcx() && probePerfEventLink(), "needs tcx and perf event links")) return;
  const name = `nbh2l${process.pid % 10000}`;
  execFileSync("ip", ["link", "add", name, "type", "veth", "peer", "name", `${name}p`]);
  t.after(() => execFileSync("ip", ["link", "del", name]));
  const returnZero = Buffer.from("b7000000000000009500000000000000", "hex");
  using classifier = Program.load({ type: ProgramType.SchedCls, instructions: returnZero, name: "nbh2_tcx", license: "GPL" });
  using tracer = Program.load({ type: ProgramType.Tracepoint, instructions: returnZero, name: "nbh2_tp", license: "GPL" });
  using tcx = attachTcx(classifier, { interface: name, direction: "egress" });
  using tracepoint = attachTracepoint(tracer, "sock", "inet_sock_set_state");
  const list = runCli(["link", "list"]);
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /^id\s+type\s+prog\s+attach type\s+target$/m);
  assert.match(list.stdout, new RegExp(`^${tcx.info().id}\\s+Tcx\\s+${classifier.id}\\s+TcxEgress\\s+${name} egress$`, "m"));
  assert.match(list.stdout, new RegExp(`^${tracepoint.info().id}\\s+PerfEvent\\s+${tracer.id}\\s+tracepoint inet_sock_set_state$`, "m"));
  const json = runCli(["link", "list", "--json"]);
  const rows = json.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(rows.find((r) => r.programId === classifier.id), { id: tcx.info().id, type: "Tcx", programId: classifier.id, interface: name, attachType: "TcxEgress", direction: "egress" });
  const traced = rows.find((r) => r.programId === tracer.id);
  assert.equal(traced.tracepoint, "inet_sock_set_state");
  assert.equal(traced.perfEvent, "tracepoint");
});

test("netbpf map dump shows .rodata and .bss as their variables, like bpftool, with 64-bit values exact", async (t) => {
  if (skipUnlessRoot(t, "to create BPF maps and programs")) return;
  const { execFileSync } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  const { loadCollectionSpec } = await import("../../src/elf/collection-spec.js");
  const { Collection } = await import("../../src/core/collection.js");
  const spec = loadCollectionSpec(fileURLToPath(new URL("../../../test/fixtures/gen/gen.o", import.meta.url)));
  // Below -2^53: a JSON number would round it.
  const bias = -(2n ** 60n) - 3n;
  spec.dataSections[".rodata"]!.set("multiplier", 7);
  spec.dataSections[".rodata"]!.set("bias", bias);
  spec.dataSections[".rodata"]!.set("watched_port", 8080);
  using collection = Collection.load(spec, { btf: true });
  const rodata = collection.maps[".rodata"]!;
  const json = runCli(["map", "dump", String(rodata.id), "--json"]);
  assert.equal(json.status, 0, json.stderr);
  assert.equal(json.stdout, `{"section":".rodata","variables":{"multiplier":7,"bias":"${bias}","watched_port":8080}}\n`);
  // bpftool shows the same variables with the same values.
  const reference = execFileSync("bpftool", ["map", "dump", "id", String(rodata.id), "-j"], { encoding: "utf8" });
  assert.match(reference, new RegExp(`\\[\\{"multiplier":7\\},\\{"bias":${bias}\\},\\{"watched_port":8080\\}\\]`));
  const text = runCli(["map", "dump", String(rodata.id)]);
  assert.equal(text.stdout, `.rodata multiplier = 7\n.rodata bias = "${bias}"\n.rodata watched_port = 8080\n`);
  const bss = runCli(["map", "dump", String(collection.maps[".bss"]!.id), "--json"]);
  assert.deepEqual(Object.keys(JSON.parse(bss.stdout).variables), ["runs", "unused_state_event"]);
});

test("netbpf map dump says when a map is empty", (t) => {
  if (skipUnlessRoot(t, "to create BPF maps and programs")) return;
  using map = BpfMap.create({ type: MapType.Hash, key: u32, value: u32, maxEntries: 8, name: "nbh2_empty" });
  const text = runCli(["map", "dump", String(map.id)]);
  assert.equal(text.status, 0, text.stderr);
  assert.equal(text.stdout, `map ${map.id} (nbh2_empty) is empty\n`);
  const json = runCli(["map", "dump", String(map.id), "--json"]);
  assert.equal(json.stdout, "");
});
