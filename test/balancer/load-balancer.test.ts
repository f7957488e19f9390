import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { LoadBalancer } from "../../src/balancer/load-balancer.js";
import { BalancerMetricsSource } from "../../src/server/balancer-metrics.js";
import { Registry } from "prom-client";
import { cliPath } from "../support/cli.js";
import { isRoot, skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";
import { removeStateRoot, testStateRoot } from "../support/state-root.js";
import { BalancerNetwork, connectionsScript, serverScript, transfersScript, udpScript, vip4, vip6 } from "./balancer-network.js";
import { spawnSync } from "node:child_process";

const servicePort = 80;
const backendPort = 8080;

function hasEthtool(): boolean {
  return spawnSync("ethtool", ["--version"]).status === 0;
}

interface Setup {
  net: BalancerNetwork;
  root: string;
  names: string[];
  startServer(index: number): void;
  stopServer(index: number): void;
}

async function setup(t: TestContext, backends = 3): Promise<Setup | undefined> {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces, tcx and bpffs")) return undefined;
  if (skipUnlessTool(t, hasEthtool(), "ethtool is not installed (apt-get install ethtool)")) return undefined;
  const net = BalancerNetwork.create(backends);
  const root = testStateRoot("lb");
  t.after(() => {
    net.destroy();
    removeStateRoot(root);
  });
  const servers = new Map<number, ReturnType<BalancerNetwork["start"]>>();
  const names = net.backends.map((_, i) => `backend-${i}`);
  const startServer = (index: number) => {
    const child = net.start(net.backends[index]!.namespace, [process.execPath, "--input-type=module", "-e", serverScript(names[index]!, backendPort)]);
    servers.set(index, child);
  };
  for (let i = 0; i < backends; i++) startServer(i);
  await Promise.all([...servers.values()].map((child) => new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk) => {
      out += chunk;
      if (out.includes("ready")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`a backend server exited (${code})`)));
  })));
  const stopServer = (index: number) => servers.get(index)?.kill("SIGKILL");
  return { net, root, names, startServer, stopServer };
}

function createBalancer(s: Setup, options: { service?: string; family?: 4 | 6; weights?: number[]; protocol?: "tcp" | "udp"; healthCheck?: false | { intervalMs: number; timeoutMs: number; rise: number; fall: number } }): LoadBalancer {
  const family = options.family ?? 4;
  return s.net.inBalancer(() => LoadBalancer.create({
    service: options.service ?? (family === 4 ? `${vip4}:${servicePort}` : `[${vip6}]:${servicePort}`),
    protocol: options.protocol,
    interfaces: [s.net.client.peer, ...s.net.backends.map((b) => b.peer)],
    backends: s.net.backends.map((b, i) => ({ endpoint: family === 4 ? `${b.ipv4}:${backendPort}` : `[${b.ipv6}]:${backendPort}`, weight: options.weights?.[i] })),
    tableSize: 4093,
    healthCheck: options.healthCheck ?? false,
    stateRoot: s.root,
  }));
}

function connections(s: Setup, host: string, count: number): { counts: Record<string, number>; failed: number } {
  return JSON.parse(s.net.node(s.net.client.namespace, connectionsScript(host, servicePort, count), 120_000));
}

test("6,000 TCP connections spread over 3 backends within 10% of even, checksums verified by every receiver", { timeout: 180_000 }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  const balancer = createBalancer(s, {});
  // 6,000 connections: 10% of an even share is 5.5 binomial standard deviations, so the
  // bound catches a skewed spread without failing on chance.
  const { counts, failed } = connections(s, vip4, 6000);
  assert.equal(failed, 0);
  assert.deepEqual(Object.keys(counts).sort(), s.names);
  for (const name of s.names) assert.ok(Math.abs(counts[name]! - 2000) <= 200, `${name}: ${counts[name]} connections (expected 2000 ± 10%)`);
  assert.equal(s.net.checksumErrors(), 0, "no receiver counted a bad checksum");
  const status = balancer.status();
  for (const [i, backend] of status.backends.entries()) {
    assert.equal(Number(backend.flows), counts[s.names[i]!], `${backend.endpoint}: flows counted in the kernel`);
    assert.ok(backend.packets >= backend.flows * 3n && backend.replyPackets >= backend.flows * 2n, `${backend.endpoint}: packets both ways`);
    assert.ok(Math.abs(backend.share - 1 / 3) < 0.02);
  }
  assert.equal(status.dropped, 0n);
  // The same counters, as `netbpf serve` exports them.
  const registry = new Registry();
  const source = new BalancerMetricsSource({ stateRoot: s.root });
  source.register(registry);
  source.collect();
  const metrics = await registry.metrics();
  for (const [i, backend] of status.backends.entries()) {
    const line = new RegExp(`^netbpf_lb_backend_flows\\{service="203\\.0\\.113\\.10:80",protocol="tcp",backend="${backend.endpoint.replaceAll(".", "\\.")}"\\} (\\d+)$`, "m");
    assert.equal(Number(line.exec(metrics)?.[1]), counts[s.names[i]!], metrics);
  }
  assert.match(metrics, /^netbpf_lb_dropped_packets\{service="203\.0\.113\.10:80",protocol="tcp"\} 0$/m);
});

test("weights: the table and the traffic follow them", { timeout: 180_000 }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  const balancer = createBalancer(s, { weights: [1, 2, 3] });
  const status = balancer.status();
  status.backends.forEach((b, i) => assert.ok(Math.abs(b.share - (i + 1) / 6) < 0.01, `${b.endpoint}: share ${b.share}`));
  // 6,000 connections: the smallest share's 15% is 5.2 binomial standard deviations.
  const { counts, failed } = connections(s, vip4, 6000);
  t.diagnostic(`connections per backend: ${JSON.stringify(counts)}`);
  assert.equal(failed, 0);
  s.names.forEach((name, i) => {
    const expected = (6000 * (i + 1)) / 6;
    assert.ok(Math.abs(counts[name]! - expected) <= expected * 0.15, `${name}: ${counts[name]} (expected ${expected} ± 15%)`);
  });
});

test("removing a backend moves only its new flows; established connections to the others keep transferring; draining lets a transfer finish", { timeout: 180_000 }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  const balancer = createBalancer(s, {});
  // 30 slow transfers of 2 MiB each (~1 s at 2 MiB/s), spread over all three backends.
  const bytes = 2 * 1024 * 1024;
  const child = s.net.start(s.net.client.namespace, [process.execPath, "--input-type=module", "-e", transfersScript(vip4, servicePort, 30, bytes, 1024 * 1024)]);
  let out = "";
  const connected = new Map<number, string>();
  const ended = new Promise<{ results: { name: string; received: number; error?: string }[] }>((resolve, reject) => {
    child.stdout.on("data", (chunk) => {
      out += chunk;
      for (const line of out.split("\n").slice(0, -1)) {
        const message = JSON.parse(line);
        if (message.results) resolve(message);
        else connected.set(message.index, message.name);
      }
      out = out.slice(out.lastIndexOf("\n") + 1);
    });
    child.once("exit", (code) => code !== 0 && reject(new Error(`transfers exited ${code}`)));
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const waitStart = Date.now();
  while (connected.size < 30) {
    if (Date.now() - waitStart > 20_000) assert.fail(`only ${connected.size} of 30 transfers connected: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const onBackend = (name: string) => [...connected.values()].filter((n) => n === name).length;
  assert.ok(s.names.every((name) => onBackend(name) > 0), "transfers reach every backend");
  // Backend 0 drains (its transfers must finish), backend 1 is removed (its transfers break), backend 2 stays.
  balancer.drain(`${s.net.backends[0]!.ipv4}:${backendPort}`);
  balancer.remove(`${s.net.backends[1]!.ipv4}:${backendPort}`);
  const during = connections(s, vip4, 300);
  assert.deepEqual(Object.keys(during.counts), [s.names[2]], "new flows go only to the backend that is neither draining nor removed");
  const { results } = await Promise.race([ended, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`transfers did not end: ${stderr}`)), 60_000))]);
  for (const [index, result] of results.entries()) {
    const name = connected.get(index);
    if (name === s.names[0] || name === s.names[2]) assert.equal(result.received, bytes, `transfer ${index} on ${name} finished`);
  }
  const status = balancer.status();
  assert.deepEqual(status.backends.map((b) => [b.endpoint.split(":")[0], b.state]), [[s.net.backends[0]!.ipv4, "draining"], [s.net.backends[2]!.ipv4, "active"]]);
  assert.equal(status.backends[0]!.share, 0);
  assert.equal(status.backends[1]!.share, 1);
  // A removed backend can come back.
  assert.throws(() => balancer.add({ endpoint: `${s.net.backends[1]!.ipv4}:${backendPort}` }), /where the balancer is not attached/, "a route looked up outside the balancer namespace is refused");
  s.net.inBalancer(() => balancer.add({ endpoint: `${s.net.backends[1]!.ipv4}:${backendPort}` }));
  const back = connections(s, vip4, 300);
  assert.deepEqual(Object.keys(back.counts).sort(), [s.names[1], s.names[2]]);
});

test("a killed backend is taken out by `netbpf lb health` within its interval × fall, and put back when it answers again", { timeout: 180_000 }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  createBalancer(s, { healthCheck: { intervalMs: 200, timeoutMs: 200, rise: 1, fall: 2 } });
  const checker = s.net.start(s.net.balancer, [process.execPath, cliPath, "lb", "health", "--json", "--state-dir", s.root], "nsenter");
  const events: { event: string; endpoint?: string; health?: string }[] = [];
  let buffer = "";
  let stderr = "";
  checker.stderr.on("data", (chunk) => (stderr += chunk));
  checker.stdout.on("data", (chunk) => {
    buffer += chunk;
    const lines = buffer.split("\n");
    buffer = lines.pop()!;
    for (const line of lines) events.push(JSON.parse(line));
  });
  const waitFor = async (predicate: () => boolean, limitMs: number) => {
    const start = Date.now();
    while (!predicate()) {
      if (Date.now() - start > limitMs) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  };
  const victim = `${s.net.backends[2]!.ipv4}:${backendPort}`;
  // Start-up of a Node process on a busy machine can take seconds: wait generously for the first round.
  assert.ok(await waitFor(() => events.filter((e) => e.health === "up").length === 3, 30_000), `all backends come up: ${JSON.stringify(events)} ${stderr}`);
  const killedAt = Date.now();
  s.stopServer(2);
  assert.ok(await waitFor(() => events.some((e) => e.endpoint === victim && e.health === "down"), 3000), "the dead backend is marked down");
  const tookMs = Date.now() - killedAt;
  assert.ok(tookMs <= 2 * 200 + 200 + 1000, `taken out after ${tookMs} ms`);
  const { counts } = connections(s, vip4, 200);
  assert.equal(counts[s.names[2]!], undefined, "no new connection goes to the dead backend");
  assert.equal((counts[s.names[0]!] ?? 0) + (counts[s.names[1]!] ?? 0), 200);
  s.startServer(2);
  assert.ok(await waitFor(() => events.filter((e) => e.endpoint === victim && e.health === "up").length === 2, 5000), "the backend comes back");
  // Past a dozen rounds a waiting loop that leaked an abort listener per round has Node warn on stderr.
  await new Promise((r) => setTimeout(r, 12 * 200));
  checker.kill("SIGTERM");
  await new Promise((r) => checker.once("exit", r));
  assert.equal(stderr, "", "lb health wrote nothing on stderr");
});

test("UDP: replies come from the VIP, from every backend", { timeout: 180_000 }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  createBalancer(s, { protocol: "udp" });
  const { counts, lost } = JSON.parse(s.net.node(s.net.client.namespace, udpScript(vip4, servicePort, 300)));
  assert.equal(lost, 0);
  assert.deepEqual(Object.keys(counts).sort(), s.names.map((n) => `${n}@${vip4}:${servicePort}`));
  assert.equal(s.net.checksumErrors(), 0);
});

test("IPv6: TCP and UDP through an IPv6 VIP", { timeout: 180_000 }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  createBalancer(s, { family: 6 });
  createBalancer(s, { family: 6, protocol: "udp" });
  const { counts, failed } = connections(s, vip6, 300);
  assert.equal(failed, 0);
  assert.deepEqual(Object.keys(counts).sort(), s.names);
  const udp = JSON.parse(s.net.node(s.net.client.namespace, udpScript(vip6, servicePort, 100)));
  assert.equal(udp.lost, 0);
  assert.deepEqual(Object.keys(udp.counts).map((k) => k.split("@")[1]).filter((v, i, a) => a.indexOf(v) === i), [`${vip6}:${servicePort}`]);
  assert.equal(s.net.checksumErrors(), 0);
});

test("DSR: the packet goes unchanged to a backend holding the VIP; replies go to the client directly", { timeout: 180_000 }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  // DSR backends listen on the service's port, have the VIP on their loopback, and route clients through the router (the balancer's host).
  for (const [i, backend] of s.net.backends.entries()) {
    s.net.exec(backend.namespace, ["ip", "addr", "add", `${vip4}/32`, "dev", "lo"]);
    s.net.exec(backend.namespace, ["ip", "route", "add", "192.0.2.0/24", "via", backend.ipv4.replace(/\.\d+$/, ".254")]);
    s.net.start(backend.namespace, [process.execPath, "--input-type=module", "-e", serverScript(`${s.names[i]}-dsr`, servicePort)]);
  }
  s.net.exec(s.net.balancer, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
  const balancer = s.net.inBalancer(() => LoadBalancer.create({
    service: `${vip4}:${servicePort}`, mode: "dsr", interfaces: [s.net.client.peer, ...s.net.backends.map((b) => b.peer)],
    backends: s.net.backends.map((b) => ({ endpoint: `${b.ipv4}:${servicePort}` })), tableSize: 4093, healthCheck: false, stateRoot: s.root,
  }));
  let result = { counts: {} as Record<string, number>, failed: 1 };
  for (let attempt = 0; attempt < 10 && result.failed > 0; attempt++) result = connections(s, vip4, 600);
  assert.equal(result.failed, 0);
  assert.deepEqual(Object.keys(result.counts).sort(), s.names.map((n) => `${n}-dsr`));
  const status = balancer.status();
  assert.ok(status.backends.every((b) => b.packets > 0n && b.replyPackets === 0n), "replies bypass the balancer program");
  assert.equal(s.net.checksumErrors(), 0);
});

test("create, open and list check their arguments before touching any state", () => {
  assert.throws(() => LoadBalancer.create({ interfaces: ["lo"] } as never), /options\.service must be a string, got undefined/);
  assert.throws(() => LoadBalancer.open(8080 as never), /service must be a string, got 8080/);
  assert.throws(() => LoadBalancer.list({ stateRoot: 1 } as never), /options\.stateRoot must be a string, got 1/);
});
