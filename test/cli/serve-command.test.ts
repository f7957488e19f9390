import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseListenAddress } from "../../src/server/metrics-server.js";
import { cliPath, runCli } from "../support/cli.js";
import { isRoot, skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";
import { clientScript, ScriptProcess, serverScript, TcpdumpReference, type ClientReport, type ServerReady, type ServerReport } from "../support/traffic-scripts.js";

const mebibyte = 1024 * 1024;
const sizes = [1 * mebibyte, 2 * mebibyte, 3 * mebibyte];

async function waitForStderr(process: ScriptProcess, pattern: RegExp, timeout = 20_000): Promise<RegExpExecArray> {
  const start = Date.now();
  for (;;) {
    const match = pattern.exec(process.stderr);
    if (match) return match;
    if (Date.now() - start > timeout || process.child.exitCode !== null) throw new Error(`no ${pattern} on stderr: ${process.stderr.trim()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One sample of the Prometheus text format: the sum over every series of `name` whose labels include `labels`. */
function sumSamples(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries([...match[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => present[key] === value)) total += Number(match[3]);
  }
  return total;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

test("serve exports traffic and TCP metrics over HTTP; promtool accepts them; a real Prometheus answers a PromQL query with the byte count", { timeout: 120_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for cgroup skb programs and tracepoints")) return;
  const promtool = spawnSync("promtool", ["--version"]).status === 0;
  if (skipUnlessTool(t, promtool, "promtool is not installed (apt-get install prometheus)")) return;
  const folder = mkdtempSync(join(tmpdir(), "nbm1-prometheus-"));
  const started: ScriptProcess[] = [];
  t.after(() => {
    for (const process of started) process.kill();
    rmSync(folder, { recursive: true, force: true });
  });
  const server = ScriptProcess.node(serverScript("127.0.0.1", sizes.length, 0));
  started.push(server);
  const ready = await server.nextJson<ServerReady>();
  const serve = new ScriptProcess([process.execPath, cliPath, "serve", "--listen", "127.0.0.1:0", "--port", String(ready.tcpPort)]);
  started.push(serve);
  const url = (await waitForStderr(serve, /metrics on (http:\/\/\S+)\/metrics/))[1]!;

  // A real Prometheus scraping serve every second.
  const prometheusPort = await freePort();
  writeFileSync(join(folder, "prometheus.yml"), `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: netbpf\n    static_configs:\n      - targets: ["${url.replace("http://", "")}"]\n`);
  const prometheus = new ScriptProcess(["prometheus", `--config.file=${join(folder, "prometheus.yml")}`, `--storage.tsdb.path=${join(folder, "data")}`, `--web.listen-address=127.0.0.1:${prometheusPort}`]);
  started.push(prometheus);

  const tcpdump = await TcpdumpReference.start("lo", `tcp port ${ready.tcpPort}`);
  started.push(tcpdump.process);
  const client = ScriptProcess.node(clientScript("127.0.0.1", ready.tcpPort, 9, sizes, 0, 0));
  started.push(client);
  const sent = await client.nextJson<ClientReport>();
  const received = await server.nextJson<ServerReport>();
  assert.equal(received.connections.length, 3);
  const wire = await tcpdump.flows();
  const wireIpBytesIn = sent.tcpLocalPorts.reduce((sum, port) => sum + (wire.ipBytes.get(`${port}>${ready.tcpPort}`) ?? 0), 0);
  assert.ok(wireIpBytesIn > 6 * mebibyte, `tcpdump saw ${wireIpBytesIn} bytes`);

  // Scraped over HTTP. The closes may still be on their way through the ring: poll until they are counted.
  let text = "";
  for (let attempt = 0; attempt < 50; attempt++) {
    const response = await fetch(`${url}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    text = await response.text();
    if (sumSamples(text, "netbpf_tcp_connections_closed_total", { port: String(ready.tcpPort), direction: "incoming" }) >= 3) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const bytesIn = sumSamples(text, "netbpf_traffic_bytes_total", { port: String(ready.tcpPort), direction: "in", protocol: "tcp" });
  assert.ok(Math.abs(bytesIn - wireIpBytesIn) <= wireIpBytesIn * 0.02, `bytes in on port ${ready.tcpPort}: exported ${bytesIn}, tcpdump saw ${wireIpBytesIn} IP bytes`);
  assert.ok(bytesIn >= 6 * mebibyte);
  assert.ok(sumSamples(text, "netbpf_traffic_packets_total", { port: String(ready.tcpPort), direction: "in" }) > 0);
  assert.equal(sumSamples(text, "netbpf_tcp_connections_opened_total", { port: String(ready.tcpPort), direction: "incoming" }), 3, text);
  assert.equal(sumSamples(text, "netbpf_tcp_connections_opened_total", { port: String(ready.tcpPort), direction: "outgoing" }), 3);
  assert.equal(sumSamples(text, "netbpf_tcp_connections_closed_total", { port: String(ready.tcpPort), direction: "incoming" }), 3);
  assert.match(text, /^netbpf_tcp_rtt_seconds_count\{direction="outgoing"\} [1-9]/m);
  assert.match(text, /^netbpf_tcp_connection_duration_seconds_count\{direction="incoming"\} [1-9]/m);
  for (const name of ["netbpf_traffic_map_evictions_total", "netbpf_traffic_packets_lost_total", "netbpf_tcp_events_lost_total", "netbpf_exporter_scrape_duration_seconds_count"]) {
    assert.match(text, new RegExp(`^${name} \\d`, "m"), `${name} is exported`);
  }
  const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  assert.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);

  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok", sources: { traffic: "ok", tcp: "ok", lb: "ok" } });
  assert.equal((await fetch(`${url}/nothing`)).status, 404);

  // PromQL over what Prometheus scraped: the same byte count.
  const query = `sum(netbpf_traffic_bytes_total{port="${ready.tcpPort}",direction="in",protocol="tcp"})`;
  let answer = Number.NaN;
  const deadline = Date.now() + 40_000;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${prometheusPort}/api/v1/query?query=${encodeURIComponent(query)}`);
      const body = (await response.json()) as { status: string; data: { result: { value: [number, string] }[] } };
      if (body.status === "success" && body.data.result.length > 0) {
        answer = Number(body.data.result[0]!.value[1]);
        if (Math.abs(answer - wireIpBytesIn) <= wireIpBytesIn * 0.02) break;
      }
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  assert.ok(Math.abs(answer - wireIpBytesIn) <= wireIpBytesIn * 0.02, `Prometheus answered ${answer} for ${query}; tcpdump saw ${wireIpBytesIn} (prometheus stderr: ${prometheus.stderr.slice(-500)})`);

  // SIGTERM: a clean exit that says everything is detached.
  serve.child.kill("SIGTERM");
  assert.equal(await serve.exited(), 0, serve.stderr);
  assert.match(serve.stderr, /SIGTERM: stopped, everything detached/);
});

test("parseListenAddress: HOST:PORT, :PORT, PORT and [IPv6]:PORT; anything else is a usage error", () => {
  assert.deepEqual(parseListenAddress("127.0.0.1:9435"), { host: "127.0.0.1", port: 9435 });
  assert.deepEqual(parseListenAddress(":9000"), { host: "0.0.0.0", port: 9000 });
  assert.deepEqual(parseListenAddress("9100"), { host: "127.0.0.1", port: 9100 });
  assert.deepEqual(parseListenAddress("[::1]:9435"), { host: "::1", port: 9435 });
  for (const bad of ["127.0.0.1:70000", "host:", "a:b:c", "", "[::1]"]) assert.throws(() => parseListenAddress(bad), /--listen needs HOST:PORT/, bad);
  assert.throws(() => parseListenAddress(9435 as never), /serve: listen must be a string, got 9435 \(a number\)$/);
});

test("serve: a port in use, a bad --listen and bad options end with one line and status 2", { timeout: 60_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root")) return;
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  t.after(() => busy.close());
  const port = (busy.address() as { port: number }).port;
  const inUse = runCli(["serve", "--listen", `127.0.0.1:${port}`], { timeout: 30_000 });
  assert.equal(inUse.status, 2, inUse.stderr);
  assert.equal(inUse.stderr, `netbpf: serve: 127.0.0.1:${port} is already in use (stop what listens there, or choose another address with --listen)\n`);
  for (const [args, message] of [
    [["--listen", "localhost:http"], /--listen needs HOST:PORT/],
    [["--top-ports", "-3"], /--top-ports needs an integer/],
    [["--no-traffic", "--no-tcp"], /leave nothing to export/],
  ] as [string[], RegExp][]) {
    const result = runCli(["serve", ...args], { timeout: 30_000 });
    assert.equal(result.status, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.equal(result.stderr.trim().split("\n").length, 1);
  }
});

test("serve: bad dashboard options are one line and exit status 2, before anything is attached", () => {
  for (const [args, message] of [
    [["serve", "--ui", "--token", "short"], /16-256 characters/],
    [["serve", "--alerts", "/tmp/alerts.jsonl"], /--alerts and --history are for the dashboard/],
    [["serve", "--ui", "--history", "5"], /--history needs an integer 10-86400/],
    [["serve", "--ui", "--history", "1h"], /--history needs an integer/],
  ] as const) {
    const result = runCli([...args]);
    assert.equal(result.status, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, /^netbpf: serve: /);
  }
});
