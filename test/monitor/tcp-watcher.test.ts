import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import net from "node:net";
import { test } from "node:test";
import { Assembler, R0, R1, R2, R10 } from "../../src/asm/assembler.js";
import { u32 } from "../../src/core/codec.js";
import { listPrograms } from "../../src/core/loaded-objects.js";
import { BpfMap } from "../../src/core/map.js";
import { Program } from "../../src/core/program.js";
import { attachTcx } from "../../src/link/tcx.js";
import { TcpWatcher, watchTcp, type TcpEvent } from "../../src/monitor/tcp-watcher.js";
import { MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { UsageError } from "../../src/sys/errors.js";
import { readTcpTracepointFormats, tcpTracepoints } from "../../src/programs/tcp-state-events.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { Testbed } from "../support/testbed.js";
import { randomServicePort } from "../support/service-port.js";
import { programsLeftLoaded } from "../support/loaded-programs.js";
import { clientScript, exited, startNode } from "../support/tcp-transfers.js";

/** Collects a watcher's events in the background until `stop` aborts. */
function collect(watcher: TcpWatcher, events: TcpEvent[] = []): Promise<TcpEvent[]> {
  return (async () => {
    for await (const event of watcher) events.push(event);
    return events;
  })();
}

/** Ids of loaded programs named like watchTcp's (tcp_state, tcp_accept4, …). */
function watcherProgramIds(): Set<number> {
  return new Set(listPrograms().filter((program) => program.name.startsWith("tcp_")).map((program) => program.id));
}

test("watchTcp rejects bad options before attaching anything", () => {
  for (const options of [{ localPorts: [0] }, { remotePorts: [65536] }, { pid: -3 }, { states: ["OPEN"] }, { types: ["nope" as never] }, { ringSize: 5000 }, { maximumConnections: 0 }]) {
    assert.throws(() => watchTcp(options), UsageError, JSON.stringify(options));
  }
  const aborted = new AbortController();
  aborted.abort();
  assert.throws(() => watchTcp({ signal: aborted.signal }), UsageError);
});

test("watchTcp: a refused connection gives a reset sent, a reset received and a close with the connecting pid", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root")) return;
  const stop = new AbortController();
  const before = watcherProgramIds();
  const watcher = watchTcp({ signal: stop.signal, types: ["reset", "close", "open"] });
  // Other processes may load programs with these names meanwhile: only ours are compared.
  const loaded = [...watcherProgramIds()].filter((id) => !before.has(id));
  assert.ok(loaded.length >= 5, "programs loaded");
  const live: TcpEvent[] = [];
  const collecting = collect(watcher, live);
  // A port nobody listens on: bind one, then close it without listening.
  const probe = net.createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => probe.once("listening", resolve));
  const closedPort = (probe.address() as net.AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const socket = net.connect(closedPort, "127.0.0.1");
  const error = await new Promise<NodeJS.ErrnoException>((resolve) => socket.once("error", resolve));
  assert.equal(error.code, "ECONNREFUSED");
  // The events are in the ring within microseconds; the reader may need a moment on a busy machine.
  const deadline = Date.now() + 10_000;
  while (!live.some((event) => event.type === "close" && event.remotePort === closedPort) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  stop.abort();
  const events = await collecting;
  const mine = events.filter((event) => event.localPort === closedPort || event.remotePort === closedPort);
  const sent = mine.find((event) => event.type === "reset" && event.resetDirection === "sent");
  const received = mine.find((event) => event.type === "reset" && event.resetDirection === "received");
  const closed = mine.find((event) => event.type === "close");
  assert.ok(sent, JSON.stringify(mine, (_, v) => (typeof v === "bigint" ? String(v) : v)));
  assert.equal(sent.localPort, closedPort);
  assert.equal(sent.localAddress, "127.0.0.1");
  assert.ok(received);
  assert.equal(received.remotePort, closedPort);
  assert.equal(received.pid, process.pid);
  assert.equal(received.state, "SYN_SENT");
  assert.ok(closed);
  assert.equal(closed.pid, process.pid);
  assert.equal(closed.command, "node");
  assert.equal(closed.role, "active");
  assert.equal(closed.resetsReceived, 1);
  assert.equal(closed.remoteAddress, "127.0.0.1");
  assert.equal(sent.remotePort, closed.localPort);
  assert.equal(mine.some((event) => event.type === "open"), false, "never established");
  assert.equal(watcher.closed, true);
  const loadedIds = new Set(loaded);
  const remaining = (await programsLeftLoaded((program) => loadedIds.has(program.id))).map((program) => program.id);
  assert.deepEqual(remaining, [], "everything unloaded when the signal aborted");
});

test("watchTcp: a dropped SYN is retransmitted; the retransmit and the close carry the count and the client's pid", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root")) return;
  const bed = Testbed.create("nbm2r", { disableIpv6: true });
  t.after(() => bed.destroy());
  const port = randomServicePort();
  // Side B drops everything arriving while drop[0] is 1 (tcx ingress).
  using drop = BpfMap.create({ type: MapType.Array, key: u32, value: u32, maxEntries: 1, name: "nbm2_drop" });
  const dropper = new Assembler()
    .store("u32", R10, -4, 0).mov64(R2, R10).add64(R2, -4).loadMapFd(R1, "nbm2_drop").call("map_lookup_elem")
    .jumpIf(R0, "==", 0, "pass").load("u32", R1, R0, 0).jumpIf(R1, "==", 0, "pass")
    .return(2).label("pass").return(0).finish();
  using program = Program.load({ type: ProgramType.SchedCls, instructions: dropper, name: "nbm2_drop" }, { maps: { nbm2_drop: drop } });
  using link = bed.inNamespace(bed.b, () => attachTcx(program, { interface: bed.b.interface, direction: "ingress" }));
  void link;
  // A static neighbour entry: no ARP exchange for the dropper to eat.
  const [linkB] = JSON.parse(spawnSync("ip", ["-n", bed.b.namespace, "-j", "link", "show", "dev", bed.b.interface], { encoding: "utf8" }).stdout) as { address: string }[];
  const neighbour = spawnSync("ip", ["-n", bed.a.namespace, "neigh", "replace", bed.b.address, "lladdr", linkB!.address, "dev", bed.a.interface, "nud", "permanent"], { encoding: "utf8" });
  assert.equal(neighbour.status, 0, neighbour.stderr);
  const sink = startNode(`import net from "node:net"; net.createServer((s) => s.resume().on("end", () => s.end())).listen(${port}, "${bed.b.address}", () => console.log("listening"));`, ["ip", "netns", "exec", bed.b.namespace]);
  t.after(() => sink.kill());
  await new Promise<void>((resolve) => sink.stdout.once("data", () => resolve()));

  const stop = new AbortController();
  const watcher = watchTcp({ signal: stop.signal, remotePorts: [port], types: ["state", "retransmit", "close"] });
  const events: TcpEvent[] = [];
  const collecting = collect(watcher, events);
  drop.put(0, 1);
  const client = startNode(clientScript(bed.b.address, port, 1000), ["ip", "netns", "exec", bed.a.namespace]);
  const clientDone = exited(client);
  // Once the client's SYN is out (and dropped), let the retransmitted one (about a second later) through.
  const deadline = Date.now() + 15_000;
  while (!events.some((event) => event.state === "SYN_SENT") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  await new Promise((resolve) => setTimeout(resolve, 200));
  drop.put(0, 0);
  const result = await clientDone;
  assert.equal(result.code, 0, result.stderr);
  await new Promise((resolve) => setTimeout(resolve, 300));
  stop.abort();
  await collecting;
  const retransmit = events.find((event) => event.type === "retransmit");
  const closed = events.find((event) => event.type === "close");
  assert.ok(retransmit, JSON.stringify(events, (_, v) => (typeof v === "bigint" ? String(v) : v)));
  assert.equal(retransmit.state, "SYN_SENT");
  assert.equal(retransmit.pid, client.pid);
  assert.equal(retransmit.remoteAddress, bed.b.address);
  assert.ok(closed);
  assert.equal(closed.pid, client.pid);
  assert.ok(closed.retransmits >= 1, `retransmits ${closed.retransmits}`);
  assert.ok(closed.connectLatencyMilliseconds! >= 900, `connect latency ${closed.connectLatencyMilliseconds} ms includes the 1 s SYN timeout`);
});

test("a kernel without a needed tracepoint is a UsageError naming it; an optional one is just absent", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root (tracefs)")) return;
  const formats = readTcpTracepointFormats();
  for (const tracepoint of tcpTracepoints) if (!tracepoint.optional) assert.ok(formats.get(`${tracepoint.category}:${tracepoint.name}`), tracepoint.name);
  const missing = [...tcpTracepoints, { category: "tcp", name: "tcp_no_such_event", optional: false }];
  assert.throws(() => readTcpTracepointFormats(missing), (error: unknown) => error instanceof UsageError && /no tracepoint tcp:tcp_no_such_event/.test(error.message));
  const optional = readTcpTracepointFormats([{ category: "tcp", name: "tcp_no_such_event", optional: true }]);
  assert.equal(optional.get("tcp:tcp_no_such_event"), undefined);
});
