/**
 * The firewall on a routed testbed (client — router — server namespaces):
 * real TCP, UDP and ICMP through the router, whose client-side interface
 * carries the firewall. State lives in a test-only bpffs folder.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Firewall } from "../../src/firewall/firewall.js";
import { StateStore } from "../../src/state/state-store.js";
import { inNetworkNamespace } from "../../src/sys/network-namespace.js";
import { CounterServer, pings, tcpConnects, udpSenderScript } from "../support/control-traffic.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { RoutedTestbed } from "../support/routed-testbed.js";
import { removeStateRoot, stateEnvironment, testStateRoot } from "../support/state-root.js";

const stateRoot = testStateRoot("c");
const env = stateEnvironment(stateRoot);
let bed: RoutedTestbed | undefined;
let server: CounterServer | undefined;
let scratch: string | undefined;

before(async () => {
  if (!isRoot()) return;
  bed = RoutedTestbed.create("c");
  server = await CounterServer.start(bed, bed.server, [5001, 5002, 5003], [8080, 8081]);
  scratch = mkdtempSync(join(tmpdir(), "nbc-firewall-"));
});

after(async () => {
  await server?.stop();
  bed?.destroy();
  removeStateRoot(stateRoot);
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function netbpf(...args: string[]) {
  return bed!.netbpf(bed!.router, env, ...args);
}

function inRouter<T>(action: () => T): T {
  return inNetworkNamespace(bed!.router.namespace, action);
}

function firewall(): Firewall {
  return inRouter(() => Firewall.open(bed!.routerClientSide, { store: StateStore.open({ root: stateRoot }) }));
}

async function sendUdp(targets: { host: string; port: number }[], count: number): Promise<number[]> {
  const result = bed!.tryExec(bed!.client, [process.execPath, "--input-type=module", "-e", udpSenderScript(targets, count)], { timeout: 120_000 });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout.trim()) as number[];
}

async function delta(action: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await server!.counts();
  await action();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const afterCounts = await server!.counts();
  return Object.fromEntries(Object.keys(afterCounts).map((port) => [port, afterCounts[port]! - (before[port] ?? 0)]));
}

function rulesJson(): Record<string, unknown>[] {
  const result = netbpf("rules", "--json");
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim().split("\n").filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
}

test("blocked TCP, UDP and ICMP flows get nothing through while the others pass", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and XDP")) return;
  const b = bed!;
  assert.equal(tcpConnects(b, b.serverAddress, 8081), "ok", "before any rule");
  assert.ok(pings(b, b.serverAddress));

  const tcpRule = netbpf("block", "-i", b.routerClientSide, "-p", "tcp", "--port", "8081");
  assert.equal(tcpRule.status, 0, tcpRule.stderr);
  assert.match(tcpRule.stdout, /xdp native|xdp generic/);
  assert.equal(netbpf("block", "-i", b.routerClientSide, "-p", "udp", "--port", "5002-5003").status, 0);
  assert.equal(netbpf("block", "-i", b.routerClientSide, "-f", `icmp and dst host ${b.serverAddress}`).status, 0);
  assert.equal(netbpf("block", "-i", b.routerClientSide, "--direction", "ingress", b.clientAddress6).status, 0);

  assert.equal(tcpConnects(b, b.serverAddress, 8081), "timeout", "TCP to the blocked port");
  assert.equal(tcpConnects(b, b.serverAddress, 8080), "ok", "TCP to another port");
  assert.equal(tcpConnects(b, b.serverAddress6, 8080), "timeout", "TCP over IPv6 from the blocked address");
  assert.equal(pings(b, b.serverAddress), false, "ICMP matching the expression");
  assert.equal(pings(b, "192.0.2.1"), true, "ICMP to the router");
  const counts = await delta(() => sendUdp([{ host: b.serverAddress, port: 5001 }, { host: b.serverAddress, port: 5002 }, { host: b.serverAddress, port: 5003 }], 200));
  assert.deepEqual(counts, { 5001: 200, 5002: 0, 5003: 0 });

  const rules = rulesJson();
  const udpRule = rules.find((rule) => (rule.match as { ports?: unknown } | undefined)?.ports !== undefined && (rule.match as { protocol?: number }).protocol === 17);
  assert.ok(udpRule, JSON.stringify(rules));
  assert.ok((udpRule.packets as number) >= 400, `udp rule counted ${udpRule.packets}`);
  assert.ok((udpRule.bytes as number) >= 400 * (14 + 20 + 8 + 64));
  const table = netbpf("rules");
  assert.match(table.stdout, /INTERFACE\s+ID\s+ACTION/);

  const flushed = netbpf("rules", "flush", "-i", b.routerClientSide);
  assert.equal(flushed.status, 0, flushed.stderr);
  assert.equal(tcpConnects(b, b.serverAddress, 8081), "ok", "after flush");
  assert.equal(pings(b, b.serverAddress), true);
});

test("rules persist after kill -9 of the process that made them; the next run picks them up", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and XDP")) return;
  const b = bed!;
  const script = `
import { Firewall } from ${JSON.stringify(new URL("../../src/firewall/firewall.js", import.meta.url).href)};
Firewall.open(${JSON.stringify(b.routerClientSide)}).block({ addresses: [${JSON.stringify(b.clientAddress)}], protocol: "udp" });
console.log("installed");
setInterval(() => {}, 1000);
`;
  const child = b.start(b.router, [process.execPath, "--input-type=module", "-e", script], env);
  try {
    const output = await new Promise<string>((resolve, reject) => {
      let text = "";
      child.stdout.on("data", (chunk) => { text += chunk; if (text.includes("installed")) resolve(text); });
      child.stderr.on("data", (chunk) => { text += chunk; });
      child.on("exit", () => reject(new Error(`exited early: ${text}`)));
    });
    assert.match(output, /installed/);
  } finally {
    child.kill("SIGKILL");
  }
  await new Promise((resolve) => child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once("exit", resolve));
  const counts = await delta(() => sendUdp([{ host: b.serverAddress, port: 5001 }], 50));
  assert.equal(counts[5001], 0, "still blocked after kill -9");
  assert.equal(tcpConnects(b, b.serverAddress, 8080), "ok", "TCP from the same address is not blocked");
  const rules = rulesJson().filter((rule) => rule.action === "block");
  assert.equal(rules.length, 1);
  assert.equal(rules[0]!.packets, 50);
  const deleted = netbpf("rules", "delete", String(rules[0]!.id), "-i", b.routerClientSide);
  assert.equal(deleted.status, 0, deleted.stderr);
  const afterDelete = await delta(() => sendUdp([{ host: b.serverAddress, port: 5001 }], 50));
  assert.equal(afterDelete[5001], 50);
});

test("rule changes under continuous traffic lose no allowed packet and let no blocked one through", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and XDP")) return;
  const b = bed!;
  const fw = firewall();
  const blocked = inRouter(() => fw.block({ protocol: "udp", ports: 5002 }));
  const before = await server!.counts();
  const count = 3000;
  const sender = b.start(b.client, [process.execPath, "--input-type=module", "-e", udpSenderScript([{ host: b.serverAddress, port: 5001 }, { host: b.serverAddress, port: 5002 }], count, { burst: 20, pauseMs: 2 })]);
  let sentText = "";
  sender.stdout.on("data", (chunk) => (sentText += chunk));
  const finished = new Promise((resolve) => sender.once("exit", resolve));
  // Change the rules while the traffic flows: each change replaces the programs or the trie entries.
  let changes = 0;
  let running = true;
  void finished.then(() => (running = false));
  while (running && changes < 200) {
    inRouter(() => {
      const expression = fw.block({ expression: `udp and dst port ${6000 + (changes % 50)}` });
      const addresses = fw.block({ addresses: [`10.${changes % 250}.0.0/16`, "2001:db8:ff::/48"] });
      const allowPort = fw.allow({ protocol: "tcp", ports: { first: 9000, last: 9100 + changes } });
      fw.deleteRule(expression.id);
      fw.deleteRule(addresses.id);
      fw.deleteRule(allowPort.id);
    });
    changes += 3;
    await new Promise((resolve) => setImmediate(resolve));
  }
  await finished;
  assert.ok(changes >= 6, `only ${changes} rule changes happened during the traffic`);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const sent = JSON.parse(sentText.trim()) as number[];
  const afterCounts = await server!.counts();
  assert.deepEqual(sent, [count, count]);
  assert.equal(afterCounts[5001]! - before[5001]!, count, `allowed packets received (${changes} rule changes)`);
  assert.equal(afterCounts[5002]! - before[5002]!, 0, "blocked packets received");
  const status = inRouter(() => fw.rules()).find((rule) => rule.id === blocked.id)!;
  assert.equal(status.packets, BigInt(count), "the block rule counted every blocked packet");
  inRouter(() => fw.flush());
});

test("a 10,000-line blocklist loads in one batch; a bad line or a conflict changes nothing and exits 2", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and XDP")) return;
  const b = bed!;
  const lines = ["# test blocklist"];
  for (let i = 0; i < 10_000; i++) lines.push(`100.${64 + (i >> 8) % 64}.${i & 255}.0/24`);
  lines.push(`${b.clientAddress}/32  # the client`);
  const list = join(scratch!, "blocklist.txt");
  writeFileSync(list, lines.join("\n") + "\n");
  const loaded = netbpf("block", "-i", b.routerClientSide, "--direction", "ingress", "--file", list);
  assert.equal(loaded.status, 0, loaded.stderr);
  const counts = await delta(() => sendUdp([{ host: b.serverAddress, port: 5001 }], 20));
  assert.equal(counts[5001], 0);
  const rule = rulesJson().find((entry) => entry.addressCount === 10_001)!;
  assert.ok(rule, "one rule with every prefix");
  assert.equal(rule.packets, 20);

  const manifestBefore = JSON.stringify(rulesJson().map(({ packets: _p, bytes: _b, ...rest }) => rest));
  const bad = join(scratch!, "bad.txt");
  writeFileSync(bad, "# header\n198.18.0.0/15\n203.0.113.0/24\n198.18.0.0/33\n");
  const cases: [string[], RegExp][] = [
    [["block", "-i", b.routerClientSide, "--file", bad], /line 4/],
    [["block", "-i", b.routerClientSide, "300.1.1.1"], /not an IPv4 or IPv6 address/],
    [["block", "-i", "nbc-missing0", "192.0.2.9"], /no network interface named nbc-missing0/],
    [["block", "192.0.2.9"], /no interface given/],
    [["block", "-i", b.routerClientSide, "--direction", "ingress", b.clientAddress], /already in rule/],
    [["block", "-i", b.routerClientSide, "-f", "tcp port"], /filter|expected/],
    [["block", "-i", b.routerClientSide, "--port", "70000", "-p", "tcp"], /port/],
    [["block", "-i", b.routerClientSide, "--port", "53", "-p", "icmp"], /ports need protocol/],
    [["rules", "delete", "999", "-i", b.routerClientSide], /no rule 999/],
    [["rules", "policy", "maybe", "-i", b.routerClientSide], /allow or drop/],
  ];
  for (const [args, message] of cases) {
    const result = netbpf(...args);
    assert.equal(result.status, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message, args.join(" "));
    // One line; a filter error adds the expression with a caret under the mistake, as everywhere else.
    const lines = result.stderr.trim().split("\n");
    if (args.includes("-f")) assert.deepEqual([lines.length, /^ +\^+$/.test(lines[2] ?? "")], [3, true], result.stderr);
    else assert.equal(lines.length, 1, `one line: ${result.stderr}`);
  }
  const manifestAfter = JSON.stringify(rulesJson().map(({ packets: _p, bytes: _b, ...rest }) => rest));
  assert.equal(manifestAfter, manifestBefore, "installed state unchanged");
  assert.equal(netbpf("rules", "delete", String(rule.id), "-i", b.routerClientSide).status, 0);
});

test("drop by default with an allow list", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and XDP")) return;
  const b = bed!;
  assert.equal(netbpf("allow", "-i", b.routerClientSide, "-p", "udp", "--port", "5001").status, 0);
  assert.equal(netbpf("allow", "-i", b.routerClientSide, "-p", "icmp").status, 0);
  const policy = netbpf("rules", "policy", "drop", "-i", b.routerClientSide);
  assert.equal(policy.status, 0, policy.stderr);
  const counts = await delta(() => sendUdp([{ host: b.serverAddress, port: 5001 }, { host: b.serverAddress, port: 5003 }], 30));
  assert.deepEqual([counts[5001], counts[5003]], [30, 0]);
  assert.equal(tcpConnects(b, b.serverAddress, 8080), "timeout");
  assert.equal(pings(b, b.serverAddress), true);
  assert.equal(netbpf("rules", "policy", "allow", "-i", b.routerClientSide).status, 0);
  assert.equal(tcpConnects(b, b.serverAddress, 8080), "ok");
});

test("reset leaves nothing: no pins, no programs on the interface", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and XDP")) return;
  const b = bed!;
  const status = netbpf("status");
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, new RegExp(`firewall\\s+${b.routerClientSide}\\s+xdp on ${b.routerClientSide} \\(xdp (native|generic)\\), tc egress on ${b.routerClientSide} \\(tcx\\)`));
  const reset = netbpf("reset");
  assert.equal(reset.status, 0, reset.stderr);
  assert.equal(existsSync(stateRoot), false, "the state folder is gone");
  const link = b.exec(b.router, ["ip", "-d", "link", "show", "dev", b.routerClientSide]).stdout;
  assert.doesNotMatch(link, /prog\/xdp|xdpgeneric|xdpdrv/, link);
  const attached = b.exec(b.router, ["bpftool", "net", "show", "dev", b.routerClientSide]).stdout;
  assert.doesNotMatch(attached, /nb_fw/, attached);
  assert.equal(tcpConnects(b, b.serverAddress, 8081), "ok");
});
