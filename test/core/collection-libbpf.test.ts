import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import net from "node:net";
import { after, test, type TestContext } from "node:test";
import { sizeOf } from "../../src/btf/btf-query.js";
import { Collection } from "../../src/core/collection.js";
import { loadCollectionSpec, type CollectionSpec } from "../../src/elf/collection-spec.js";
import { knownSectionNames } from "../../src/elf/section-names.js";
import type { Link } from "../../src/link/link.js";
import { attachRawTracepoint } from "../../src/link/raw-tracepoint.js";
import { attachTracepoint } from "../../src/link/tracepoint.js";
import { PerfEventReader } from "../../src/perf/perf-event-reader.js";
import { RingBufferReader } from "../../src/ringbuf/ring-buffer-reader.js";
import { MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { buildLibbpfLoader, buildObject, scratchFolder, toolsAvailable, writeVmlinuxHeader } from "../elf/build-object.js";
import { cliPath } from "../support/cli.js";
import { isRoot, skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";

/*
 * Differential tests of the object loader against libbpf (Debian's
 * libbpf-dev, through test/elf/objects/libbpf-loader.c): the same objects,
 * built here with clang, must load or fail the same way, get maps of the same
 * shapes, and deliver the same events from the same TCP traffic on loopback.
 */

let workspace: { path: string; remove(): void } | undefined;
let loaderPath: string | undefined;

after(() => workspace?.remove());

/** Scratch folder with vmlinux.h and the libbpf loader, made once for this file; undefined when skipped. */
function setUp(t: TestContext): string | undefined {
  if (skipUnlessKernel(t, isRoot() && existsSync("/sys/kernel/btf/vmlinux"), "needs root and kernel BTF")) return undefined;
  const tools = toolsAvailable();
  if (skipUnlessTool(t, tools.clang && tools.libbpf && tools.bpftool, "needs clang, libbpf-dev and bpftool")) return undefined;
  if (!workspace) {
    workspace = scratchFolder("libbpf");
    writeVmlinuxHeader(workspace.path);
    loaderPath = buildLibbpfLoader(workspace.path);
  }
  return workspace.path;
}

interface LoaderLine {
  program?: string;
  section?: string;
  loaded?: boolean;
  errno?: number;
  type?: number;
  map?: string;
  keySize?: number;
  valueSize?: number;
  maxEntries?: number;
  event?: string;
  ready?: boolean;
}

function parseLines(text: string): LoaderLine[] {
  return text.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as LoaderLine);
}

/** A concrete section name for each entry of libbpf's table, with a target where the entry takes one. */
function concreteSection(name: string): string {
  if (!name.endsWith("+")) return name;
  const base = name.slice(0, -1);
  if (base === "tracepoint" || base === "tp") return `${base}/sock/inet_sock_set_state`;
  if (base.startsWith("raw_tracepoint") || base.startsWith("raw_tp") || base === "tp_btf") return `${base}/inet_sock_set_state`;
  if (base.startsWith("fentry") || base.startsWith("fexit")) return `${base}/tcp_v4_connect`;
  if (base.startsWith("fmod_ret")) return `${base}/bpf_modify_return_test`;
  if (base.startsWith("lsm")) return `${base}/socket_connect`;
  if (base.startsWith("iter")) return `${base}/task`;
  if (base === "freplace") return `${base}/placeholder`;
  if (base.startsWith("struct_ops")) return `${base}/placeholder`;
  return base;
}

test("every section name of libbpf's table loads through netbpf exactly when it loads through libbpf on this kernel", (t) => {
  const directory = setUp(t);
  if (!directory) return;
  const sections = [...new Set(knownSectionNames().map(concreteSection))];
  const source = [
    "#include <linux/bpf.h>",
    "#include <bpf/bpf_helpers.h>",
    ...sections.map((section, i) => `SEC("${section}") int probe_${i}(void *context) { return 0; }`),
    'char LICENSE[] SEC("license") = "GPL";',
    "",
  ].join("\n");
  const object = buildObject(directory, source, "sections.o");
  const reference = spawnSync(loaderPath!, ["probe", object], { encoding: "utf8", timeout: 120_000 });
  assert.equal(reference.status, 0, reference.stderr);
  const libbpf = new Map(parseLines(reference.stdout).map((line) => [line.program!, line]));

  const spec = loadCollectionSpec(object);
  let compared = 0;
  const unknownToLibbpf: string[] = [];
  const differences: string[] = [];
  const loadedByBoth: string[] = [];
  sections.forEach((section, i) => {
    const name = `probe_${i}`;
    const theirs = libbpf.get(name);
    assert.ok(theirs, `libbpf reported on ${name} (${section})`);
    if (theirs.type === 0) {
      // Debian's libbpf 1.1 predates this name (tcx, netkit, uprobe.multi, …); nothing to compare.
      unknownToLibbpf.push(section);
      return;
    }
    let ours: string | true;
    try {
      Collection.load(spec, { programs: [name] }).close();
      ours = true;
    } catch (error) {
      ours = (error as Error).message;
    }
    compared++;
    if ((ours === true) !== theirs.loaded) {
      differences.push(`${section}: libbpf ${theirs.loaded ? "loads it" : `refuses it (errno ${theirs.errno})`}, netbpf ${ours === true ? "loads it" : `refuses it: ${ours}`}`);
    }
    if (ours === true && theirs.loaded) loadedByBoth.push(section);
  });
  t.diagnostic(`section names compared with libbpf: ${compared} (loaded by both: ${loadedByBoth.length}); unknown to libbpf ${spawnSync("dpkg-query", ["-W", "-f", "${Version}", "libbpf1"], { encoding: "utf8" }).stdout || "1.x"}: ${unknownToLibbpf.join(", ") || "none"}`);
  assert.ok(compared > 50, `compared only ${compared} section names`);
  assert.ok(loadedByBoth.includes("tp_btf/inet_sock_set_state"), "tp_btf programs load through both");
  assert.deepEqual(differences, []);
});

/** An object modelled on libbpf-tools, with the struct of its events and the map they come through. */
interface ToolObject {
  source: string;
  eventStruct: string;
  eventMap: string;
}

const toolObjects: ToolObject[] = [
  { source: "tcp-states.bpf.c", eventStruct: "state_event", eventMap: "events" },
  { source: "tcp-life.bpf.c", eventStruct: "life_event", eventMap: "life_events" },
  { source: "tcp-destroy.bpf.c", eventStruct: "destroy_event", eventMap: "destroyed" },
];

function internalMapName(name: string): string {
  // libbpf names data maps "<object prefix>.rodata"; netbpf names them after the section.
  const match = /\.(rodata|data|bss|kconfig)(\..*)?$/.exec(name);
  return match ? match[0] : name;
}

/** Connections to a loopback server on `port`: each sends `size` bytes, gets them back, and closes. */
async function tcpTraffic(server: net.Server, connections: number, size: number): Promise<void> {
  const port = (server.address() as net.AddressInfo).port;
  for (let i = 0; i < connections; i++) {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => socket.end(Buffer.alloc(size, i)));
      socket.on("error", reject);
      socket.resume();
      socket.on("close", () => resolve());
    });
  }
}

async function startLibbpfLoader(object: string, settings: string[]): Promise<{ child: ChildProcess; lines: LoaderLine[]; stop(): Promise<void> }> {
  const child = spawn(loaderPath!, ["run", object, ...settings], { stdio: ["ignore", "pipe", "pipe"] });
  const lines: LoaderLine[] = [];
  let buffered = "";
  let stderr = "";
  let ready: () => void;
  let failed: (error: Error) => void;
  const readyPromise = new Promise<void>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (!line.startsWith("{")) continue;
      const parsed = JSON.parse(line) as LoaderLine;
      lines.push(parsed);
      if (parsed.ready) ready();
      if (parsed.loaded === false) failed(new Error(`libbpf refused ${object}: ${line}`));
    }
  });
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.on("exit", (code) => failed(new Error(`libbpf loader exited (${code}) before it was ready: ${stderr}`)));
  const timer = setTimeout(() => failed(new Error("libbpf loader not ready after 60 s")), 60_000);
  try {
    await readyPromise;
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return {
    child,
    lines,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}

function attachAll(collection: Collection, spec: CollectionSpec): Link[] {
  const links: Link[] = [];
  for (const [name, program] of Object.entries(collection.programs)) {
    const target = spec.programs[name]!.attachTarget;
    if (program.type === ProgramType.Tracepoint && target?.kind === "tracepoint") links.push(attachTracepoint(program, target.category, target.name));
    else if (target?.kind === "btf" || target?.kind === "rawTracepoint") links.push(attachRawTracepoint(program, target.name));
    else throw new Error(`no attachment for ${name}`);
  }
  return links;
}

test("objects modelled on libbpf-tools load through libbpf and netbpf with the same maps and the same events from real TCP traffic", async (t) => {
  const directory = setUp(t);
  if (!directory) return;
  let objectsCompared = 0;
  let eventsCompared = 0;
  for (const tool of toolObjects) {
    const object = buildObject(directory, tool.source, tool.source.replace(/\.bpf\.c$/, ".o"), [`-D__TARGET_ARCH_${process.arch === "arm64" ? "arm64" : "x86"}`]);
    const server = net.createServer((socket) => socket.pipe(socket)).listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as net.AddressInfo).port;
    const reference = await startLibbpfLoader(object, [`target_port=${port}`]);
    const spec = loadCollectionSpec(object);
    spec.dataSections[".rodata"]!.set("target_port", port);
    const eventSize = sizeOf(spec.parsedBtf!, spec.parsedBtf!.findByName(tool.eventStruct, "struct")[0]!);
    let collection: Collection | undefined;
    let links: Link[] = [];
    let perfReader: PerfEventReader | undefined;
    let ringReader: RingBufferReader | undefined;
    try {
      collection = Collection.load(spec);
      const eventMap = collection.maps[tool.eventMap]!;
      if (eventMap.type === MapType.PerfEventArray) perfReader = new PerfEventReader(eventMap);
      else ringReader = new RingBufferReader(eventMap);
      links = attachAll(collection, spec);

      // The same maps, of the same shapes (perf event array sized for the possible CPUs, ring buffer rounded up).
      const theirMaps = reference.lines.filter((line) => line.map !== undefined && line.keySize !== undefined)
        .map((line) => [internalMapName(line.map!), line.type, line.keySize, line.valueSize, line.maxEntries]).sort();
      const ourMaps = Object.entries(collection.maps).map(([name, map]) => [internalMapName(name), map.type, map.keySize, map.valueSize, map.maxEntries]).sort();
      assert.deepEqual(ourMaps, theirMaps, `${tool.source}: map shapes`);

      await tcpTraffic(server, 3, 1000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await reference.stop();

      const ours: string[] = [];
      const take = (data: Buffer) => ours.push(data.subarray(0, eventSize).toString("hex"));
      perfReader?.readAvailable((record) => {
        if (record.kind === "sample") take(record.data);
      });
      ringReader?.readAvailable(take);
      const theirs = reference.lines.filter((line) => line.event !== undefined && line.map === tool.eventMap).map((line) => line.event!.slice(0, eventSize * 2));
      assert.ok(theirs.length >= 3, `${tool.source}: libbpf saw ${theirs.length} events for 3 connections`);
      assert.deepEqual(ours.sort(), theirs.sort(), `${tool.source}: the same events`);
      objectsCompared++;
      eventsCompared += ours.length;
    } finally {
      for (const link of links.reverse()) link.close();
      perfReader?.close();
      ringReader?.close();
      collection?.close();
      await reference.stop();
      server.close();
    }
  }
  t.diagnostic(`objects loaded by both libbpf and netbpf: ${objectsCompared}, events compared: ${eventsCompared}`);
  assert.equal(objectsCompared, toolObjects.length);
  assert.ok(eventsCompared > 0, "no events were compared");
});

test("netbpf load runs until Ctrl-C without --duration and streams the object's only ring buffer", async (t) => {
  const directory = setUp(t);
  if (!directory) return;
  const object = buildObject(directory, "tcp-destroy.bpf.c", "tcp-destroy-cli.o", [`-D__TARGET_ARCH_${process.arch === "arm64" ? "arm64" : "x86"}`]);
  const server = net.createServer((socket) => socket.pipe(socket)).listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as net.AddressInfo).port;
  const child = spawn(process.execPath, [cliPath, "load", object, "--set", `target_port=${port}`, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, "exit");
  try {
    for (let waited = 0; !stdout.includes('"type":"attached"'); waited += 50) {
      assert.ok(child.exitCode === null, `netbpf load exited early: ${stderr}`);
      assert.ok(waited < 60_000, "netbpf load did not attach within 60 s");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await tcpTraffic(server, 2, 100);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(child.exitCode, null, `still running a second after the traffic (no --duration): ${stderr}`);
    child.kill("SIGINT");
    const [code] = await exited;
    assert.equal(code, 0, stderr);
    const lines = stdout.trim().split("\n").map((line) => JSON.parse(line) as { type: string; map?: string });
    const events = lines.filter((line) => line.type === "event");
    assert.ok(events.length >= 2, `events from the only ring buffer: ${stdout}`);
    assert.ok(events.every((line) => line.map === "destroyed"));
    assert.equal(lines.at(-1)!.type, "stopped");
  } finally {
    if (child.exitCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
    server.close();
  }
});
