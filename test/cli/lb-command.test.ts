import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { cliPath, runCli } from "../support/cli.js";
import { isRoot, skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";
import { removeStateRoot, testStateRoot } from "../support/state-root.js";
import { BalancerNetwork, connectionsScript, serverScript, vip4 } from "../balancer/balancer-network.js";

const stateRoot = () => testStateRoot("lbcli");

test("bad input gets one line and exit code 2, and installs nothing", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for bpffs")) return;
  const root = stateRoot();
  t.after(() => removeStateRoot(root));
  const cases: [string[], RegExp][] = [
    [["lb", "300.1.1.1:80", "-b", "192.0.2.2:80", "-i", "lo"], /"300\.1\.1\.1" is not an IPv4 or IPv6 address/],
    [["lb", "203.0.113.10", "-b", "192.0.2.2:80", "-i", "lo"], /is not ADDRESS:PORT/],
    [["lb", "203.0.113.10:70000", "-b", "192.0.2.2:80", "-i", "lo"], /out of range/],
    [["lb", "203.0.113.10:80", "-b", "[2001:db8::2]:80", "-i", "lo"], /is IPv6 but the service is IPv4/],
    [["lb", "203.0.113.10:80", "-b", "192.0.2.2:80", "-i", "nbnosuchif0"], /no interface named "nbnosuchif0"/],
    [["lb", "203.0.113.10:80", "-b", "192.0.2.2:80"], /no interface given/],
    [["lb", "203.0.113.10:80", "-i", "lo"], /no backend given/],
    [["lb", "203.0.113.10:80", "-b", "192.0.2.2:80,weight=0", "-i", "lo"], /weight of 192\.0\.2\.2:80 must be an integer from 1 to 1000/],
    [["lb", "203.0.113.10:80", "-b", "192.0.2.2:80,mass=3", "-i", "lo"], /unknown backend option "mass=3"/],
    [["lb", "203.0.113.10:80", "-b", "192.0.2.2:80", "-i", "lo", "--mode", "magic"], /mode must be nat or dsr/],
    [["lb", "203.0.113.10:80", "-b", "192.0.2.2:80", "-i", "lo", "--table-size", "1000"], /table size must be one of/],
    [["lb", "203.0.113.10:80", "-b", "192.0.2.2:80", "-i", "lo", "--health-interval", "soon"], /"soon" is not a duration/],
    [["lb", "203.0.113.10:80", "-b", "192.0.2.2:80", "-i", "lo", "--nat-port-hold", "2d"], /NAT port hold time \(ms\) must be an integer from 0 to 86400000/],
    [["lb", "203.0.113.10:80", "-b", "127.0.0.2:80", "-i", "lo"], /is an address of this host/],
    [["lb", "drain", "203.0.113.10:80", "192.0.2.2:80"], /no balancer for tcp 203\.0\.113\.10:80/],
  ];
  for (const [args, message] of cases) {
    const result = runCli([...args, "--state-dir", root]);
    assert.equal(result.status, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, /^netbpf: /);
    assert.match(result.stderr, message, args.join(" "));
    assert.equal(result.stderr.trim().split("\n").length, 1, `one line: ${result.stderr}`);
  }
  assert.equal(existsSync(root), false, "nothing was installed");
});

test("the balancer outlives the command (and kill -9 of the health checker); a second install of the VIP is refused; reset removes it", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces, tcx and bpffs")) return;
  if (skipUnlessTool(t, spawnSync("ethtool", ["--version"]).status === 0, "ethtool is not installed")) return;
  const net = BalancerNetwork.create(2);
  const root = stateRoot();
  t.after(() => {
    net.destroy();
    removeStateRoot(root);
  });
  net.backends.forEach((b, i) => net.start(b.namespace, [process.execPath, "--input-type=module", "-e", serverScript(`backend-${i}`, 8080)]));
  // nsenter: the network namespace only, so the CLI sees this host's bpffs (ip netns exec would give it a fresh /sys).
  const cli = (...args: string[]) => spawnSync("nsenter", [`--net=/run/netns/${net.balancer}`, process.execPath, cliPath, ...args, "--state-dir", root], { encoding: "utf8", timeout: 60_000 });
  const interfaces = [net.client.peer, ...net.backends.map((b) => b.peer)].flatMap((name) => ["-i", name]);
  const install = cli("lb", `${vip4}:80`, ...interfaces, ...net.backends.flatMap((b) => ["-b", `${b.ipv4}:8080`]), "--table-size", "251");
  assert.equal(install.status, 0, install.stderr);
  assert.match(install.stdout, /balancing tcp 203\.0\.113\.10:80 over 2 backends/);

  const checker = net.start(net.balancer, [process.execPath, cliPath, "lb", "health", "--state-dir", root], "nsenter");
  checker.kill("SIGKILL");
  // Backends may still be starting: retry until every connection gets an answer.
  let result = { counts: {} as Record<string, number>, failed: 1 };
  for (let attempt = 0; attempt < 20 && (result.failed > 0 || Object.keys(result.counts).length < 2); attempt++) {
    result = JSON.parse(net.node(net.client.namespace, connectionsScript(vip4, 80, 100)));
  }
  assert.equal(result.failed, 0);
  assert.deepEqual(Object.keys(result.counts).sort(), ["backend-0", "backend-1"]);

  const again = cli("lb", `${vip4}:80`, ...interfaces, "-b", `${net.backends[0]!.ipv4}:8080`);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /tcp 203\.0\.113\.10:80 is already balanced/);
  const status = cli("lb", "status", "--json");
  assert.equal(status.status, 0, status.stderr);
  const parsed = JSON.parse(status.stdout);
  assert.equal(parsed.backends.length, 2, "the refused install changed nothing");
  assert.equal(parsed.backends.reduce((sum: number, b: { flows: number }) => sum + b.flows, 0) >= 100, true);
  const table = cli("lb", "status");
  assert.match(table.stdout, /tcp 203\.0\.113\.10:80 \(nat\)/);
  assert.match(table.stdout, /198\.18\.0\.2:8080\s+1\s+active\s+unknown\s+\d+\.\d%/);
  const overall = runCli(["status", "--state-dir", root]);
  assert.match(overall.stdout, /lb\s+tcp-203\.0\.113\.10:80\s+tc ingress on/);

  const reset = runCli(["reset", "--state-dir", root]);
  assert.equal(reset.status, 0, reset.stderr);
  const after = JSON.parse(net.node(net.client.namespace, connectionsScript(vip4, 80, 10)));
  assert.equal(after.failed, 10, "after reset nothing answers on the VIP");
  const tcx = spawnSync("nsenter", [`--net=/run/netns/${net.balancer}`, "bpftool", "net", "show"], { encoding: "utf8" });
  assert.doesNotMatch(tcx.stdout, /nb_lb/, "no balancer program is attached anywhere");
});
