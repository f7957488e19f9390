/**
 * Kernel objects: maps, programs, links and event readers. Links attach to
 * the probe's own `lo`, to a cgroup made for this process (removed on exit),
 * to a socket of this process, or to tracepoints with programs that do
 * nothing but return.
 */
import { createSocket, type Socket } from "node:dgram";
import { mkdirSync, rmdirSync } from "node:fs";
import { join } from "node:path";
import {
  attachCgroup, attachRawTracepoint, attachSocketFilter, attachTcx, attachTracepoint, attachXdp, AttachType, BpfMap,
  cgroup2Path, DataSection, MapType, PerfEventReader, possibleCpuCount, Program, ProgramType, RingBufferReader,
  TcpWatcher, TrafficWatcher,
} from "../../../src/index.js";
import { exit, movImmediate, program } from "../bytecode.js";
import type { AcceptedCalls, InstanceFactory } from "./types.js";

const returnZero = program(movImmediate(0, 0), exit());
const returnOne = program(movImmediate(0, 1), exit());

function load(type: ProgramType, expectedAttachType?: AttachType): Program {
  return Program.load({ type, instructions: type === ProgramType.CgroupSkb ? returnOne : returnZero, name: "nb_probe", expectedAttachType });
}

/** Closes `program` once `attach` holds it (the link keeps the kernel's reference). */
function attached<T>(type: ProgramType, attach: (program: Program) => T, expectedAttachType?: AttachType): T {
  const loaded = load(type, expectedAttachType);
  try {
    return attach(loaded);
  } finally {
    loaded.close();
  }
}

let cgroup: string | undefined;
const cgroupLinks = new Set<{ close(): void }>();

function removeCgroup(): void {
  for (const link of cgroupLinks) {
    try { link.close(); } catch { /* removing the cgroup matters more */ }
  }
  cgroupLinks.clear();
  if (cgroup !== undefined) {
    try { rmdirSync(cgroup); } catch { /* already gone */ }
    cgroup = undefined;
  }
}

/** A cgroup of this process's own, empty, removed when the process exits (or is told to stop). */
function probeCgroup(): string {
  if (cgroup === undefined) {
    const path = join(cgroup2Path(), `nb-probe-kernel-${process.pid}`);
    mkdirSync(path);
    cgroup = path;
    process.once("exit", removeCgroup);
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(signal, () => process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1)));
  }
  return cgroup;
}

let socket: Promise<Socket> | undefined;

/** A UDP socket on loopback for socket filters (one for the whole run: attaching again replaces the filter). */
function loopbackSocket(): Promise<Socket> {
  socket ??= new Promise((resolve, reject) => {
    const created = createSocket("udp4");
    created.once("error", reject);
    created.bind(0, "127.0.0.1", () => {
      created.unref();
      resolve(created);
    });
  });
  return socket;
}

/** What `make` builds from `source`, closing `source` along with it (or at once when `make` fails). */
function closingAlso<T extends { close(): void }>(source: { close(): void }, make: () => T): T {
  let made: T;
  try {
    made = make();
  } catch (error) {
    source.close();
    throw error;
  }
  const close = made.close.bind(made);
  made.close = () => {
    try { close(); } finally { source.close(); }
  };
  return made;
}

function tcxLink() {
  return attached(ProgramType.SchedCls, (loaded) => attachTcx(loaded, { interface: "lo", direction: "ingress", mechanism: "tcx" }));
}

export const factories: Record<string, InstanceFactory> = {
  BpfMap: () => BpfMap.create({ type: MapType.Hash, keySize: 4, valueSize: 8, maxEntries: 16, name: "nb_probe" }),
  FdOwner: () => BpfMap.create({ type: MapType.Array, keySize: 4, valueSize: 4, maxEntries: 1, name: "nb_probe" }),
  Program: () => load(ProgramType.SocketFilter),
  DataSection: () => new DataSection(".data", Buffer.alloc(16), [{ name: "counter", offset: 0, size: 4, typeId: undefined }, { name: "total", offset: 8, size: 8, typeId: undefined }], false),
  Link: tcxLink,
  TcLink: tcxLink,
  TcxLink: tcxLink,
  NetlinkTcLink: () => attached(ProgramType.SchedCls, (loaded) => attachTcx(loaded, { interface: "lo", direction: "egress", mechanism: "netlink" })),
  XdpLink: () => attached(ProgramType.Xdp, (loaded) => attachXdp(loaded, { interface: "lo", mode: "generic" })),
  SocketFilterLink: async () => {
    const udp = await loopbackSocket();
    return attached(ProgramType.SocketFilter, (loaded) => attachSocketFilter(loaded, udp));
  },
  TracepointLink: () => attached(ProgramType.Tracepoint, (loaded) => attachTracepoint(loaded, "sock", "inet_sock_set_state")),
  RawTracepointLink: () => attached(ProgramType.RawTracepoint, (loaded) => attachRawTracepoint(loaded, "inet_sock_set_state")),
  CgroupLink: () => {
    const path = probeCgroup();
    const link = attached(ProgramType.CgroupSkb, (loaded) => attachCgroup(loaded, { cgroup: path, attachType: "ingress" }), AttachType.CgroupInetIngress);
    cgroupLinks.add(link);
    const close = link.close.bind(link);
    link.close = () => {
      cgroupLinks.delete(link);
      close();
    };
    return link;
  },
  RingBufferReader: () => {
    const ring = BpfMap.create({ type: MapType.Ringbuf, maxEntries: 4096, name: "nb_probe_ring" });
    return closingAlso(ring, () => new RingBufferReader(ring));
  },
  PerfEventReader: () => {
    const array = BpfMap.create({ type: MapType.PerfEventArray, maxEntries: possibleCpuCount(), name: "nb_probe_perf" });
    return closingAlso(array, () => new PerfEventReader(array, { pagesPerCpu: 1 }));
  },
  TcpWatcher: () => new TcpWatcher({ ringSize: 4096, maximumConnections: 16 }),
  TrafficWatcher: () => TrafficWatcher.open({ interfaces: ["lo"], processes: false, maxEntries: 16 }),
};

export const accepted: AcceptedCalls = {
  "PerfEventReader#wait": {
    calls: ["()", "(undefined)"],
    reason: "the signal is optional (`wait(signal?)`): without one, wait() resolves when a CPU's ring wakes the reader, so on an idle reader it waits",
  },
  "RingBufferReader#wait": {
    calls: ["()", "(undefined)"],
    reason: "the signal is optional (`wait(signal?)`): without one, wait() resolves when the ring has data, so on an idle ring it waits",
  },
  "TrafficWatcher#snapshots": {
    calls: ["(42)"],
    reason: "interval is a number of milliseconds: snapshots(42) yields a snapshot every 42 ms",
  },
};
