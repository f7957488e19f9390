import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { Firewall, LoadBalancer, Marker, RateLimiter, StateStore, type StateComponent } from "../../../src/index.js";
import { bpffsPath } from "../../../src/sys/mounts.js";
import type { AcceptedCalls, InstanceFactory } from "./types.js";

/**
 * Everything lives under one state folder of the probe's private bpffs; the
 * tools attach to the probe namespace's `lo`, the balancer to a veth pair
 * made inside that namespace. All of it is removed when the process exits.
 */
const tag = `nb-probe-control-${process.pid}`;
let rootFolder: string | undefined;
let rootStore: StateStore | undefined;
let veth: { name: string; peer: string } | undefined;
let serial = 0;

/** Objects that have no close(): removed before the next instance is made, and at exit. */
let leftovers: (() => void)[] = [];

function removeLeftovers(): void {
  for (const remove of leftovers) {
    try { remove(); } catch { /* a wrong call may have removed it already */ }
  }
  leftovers = [];
}

function ip(...args: string[]): void {
  const result = spawnSync("ip", args, { encoding: "utf8", timeout: 10_000 });
  if (result.status !== 0) throw new Error(`ip ${args.join(" ")} failed: ${result.stderr ?? result.error}`);
}

process.on("exit", () => {
  removeLeftovers();
  try {
    if (rootFolder !== undefined) StateStore.open({ root: rootFolder }).reset();
  } catch { /* nothing more to do at exit */ }
  if (veth) spawnSync("ip", ["link", "del", veth.name]);
});

function root(): string {
  rootFolder ??= join(bpffsPath(), tag);
  return rootFolder;
}

function store(): StateStore {
  rootStore ??= StateStore.open({ root: root() });
  return rootStore;
}

/** A veth pair with an address on one end only, so its peer's network is reached through it (not through lo). */
function balancerLink(): { name: string; peer: string } {
  if (veth) return veth;
  const name = `nbpc${process.pid % 1e7}a`;
  const peer = `nbpc${process.pid % 1e7}b`;
  ip("link", "add", name, "type", "veth", "peer", "name", peer);
  veth = { name, peer };
  ip("addr", "add", "198.18.250.1/24", "dev", name);
  ip("link", "set", name, "up");
  ip("link", "set", peer, "up");
  return veth;
}

export const factories: Record<string, InstanceFactory> = {
  Firewall: () => Firewall.open("lo", { store: store() }),
  Marker: () => Marker.open("lo", { store: store() }),
  RateLimiter: () => RateLimiter.open("lo", { store: store(), maximumSources: 16 }),
  StateStore: () => StateStore.open({ root: join(root(), "stores", `s${++serial}`) }),
  StateComponent: () => {
    removeLeftovers();
    const component: StateComponent = store().component("probe", `c${++serial}`);
    leftovers.push(() => component.remove());
    return component;
  },
  LoadBalancer: () => {
    removeLeftovers();
    const balancer = LoadBalancer.create({
      service: `203.0.113.10:${1024 + (++serial % 60000)}`, interfaces: [balancerLink().name], backends: [{ endpoint: "198.18.250.2:80" }],
      tableSize: 251, maximumFlows: 16, healthCheck: false, stateRoot: join(root(), "lb"),
    });
    leftovers.push(() => balancer.delete());
    return balancer;
  },
};

const wellFormedId = "42 is a well-formed rule id (ids run from 1 to the tool's rule limit); the probe's instance has no rule 42, and the UsageError says so: that is the state of the interface, not a wrong argument";
const kindOptional = "kind is optional (undefined: every kind) and \"x\" is a valid component kind: the call reads or removes only the components of that kind, none in the probe's fresh store";
const validPinName = "\"x\" is a valid pin name (letters, digits and . _ : @ - [ ]); the component has no pin x, which the method handles (false, its path, nothing to remove)";

export const accepted: AcceptedCalls = {
  "Firewall#addresses": { calls: ["(42)"], reason: wellFormedId },
  "Firewall#deleteRule": { calls: ["(42)"], reason: wellFormedId },
  "Marker#deleteRule": { calls: ["(42)"], reason: wellFormedId },
  "RateLimiter#deleteRule": { calls: ["(42)"], reason: wellFormedId },
  "RateLimiter#topSources": { calls: ["(42)"], reason: "count is how many sources to list at most: 42 asks for the top 42" },
  "StateComponent#has": { calls: ['("x")'], reason: validPinName },
  "StateComponent#pinPath": { calls: ['("x")'], reason: validPinName },
  "StateComponent#unpin": { calls: ['("x")'], reason: validPinName },
  "StateStore#components": { calls: ["()", "(undefined)", '("x")'], reason: kindOptional },
  "StateStore#list": { calls: ["()", "(undefined)", '("x")'], reason: kindOptional },
  "StateStore#reset": { calls: ["()", "(undefined)", '("x")'], reason: kindOptional },
};
