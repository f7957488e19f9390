/**
 * The dashboard's HTTP side: every input from the page validated (errors as
 * JSON with a message), the token when listening beyond loopback, and the
 * page's files served from the package.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { JsonLinesAlertSource } from "../../src/server/alert-source.js";
import { BalancerMetricsSource } from "../../src/server/balancer-metrics.js";
import { readControlStatus } from "../../src/server/control-status.js";
import { DashboardAccess } from "../../src/server/dashboard-access.js";
import { DashboardFeed } from "../../src/server/dashboard-feed.js";
import { MetricsServer } from "../../src/server/metrics-server.js";
import { TcpMetricsSource } from "../../src/server/tcp-metrics.js";
import { TrafficMetricsSource } from "../../src/server/traffic-metrics.js";
import { UsageError } from "../../src/sys/errors.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path: string, headers: Record<string, string> = {}, method = "GET"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: "127.0.0.1", port, path, method, headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      if (response.headers["content-type"]?.startsWith("text/event-stream")) {
        response.once("data", (chunk: string) => {
          resolve({ status: response.statusCode!, headers: response.headers, body: chunk });
          response.destroy();
        });
        return;
      }
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ status: response.statusCode!, headers: response.headers, body }));
    });
    outgoing.on("error", reject);
    outgoing.end();
  });
}

function errorMessage(answer: Answer): string {
  return (JSON.parse(answer.body) as { error: { message: string } }).error.message;
}

test("dashboard requests are validated and answered with JSON errors; the page and its files come from the package", { timeout: 60_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root: the dashboard attaches its watchers")) return;
  const server = await MetricsServer.start({ listen: { host: "127.0.0.1", port: 0 }, sources: [], dashboard: new DashboardFeed({ historySeconds: 10 }), access: DashboardAccess.forListen("127.0.0.1") });
  t.after(() => server.close());
  const port = server.address.port;

  const page = await get(port, "/");
  assert.equal(page.status, 200);
  assert.match(page.body, /<title>netbpf dashboard<\/title>/);
  assert.match(String(page.headers["content-security-policy"]), /default-src 'self'/);
  assert.doesNotMatch(page.body, /https?:\/\//, "nothing is loaded from elsewhere");
  for (const asset of ["dashboard.js", "dashboard.css", "byte-units.js", "uPlot.iife.min.js", "uPlot.min.css"]) {
    const answer = await get(port, `/assets/${asset}`);
    assert.equal(answer.status, 200, asset);
    assert.ok(answer.body.length > 500, asset);
  }
  for (const path of ["/assets/../package.json", "/assets/%2e%2e/package.json", "/assets/index.js", "/assets/", "/api/nothing"]) assert.equal((await get(port, path)).status, 404, path);

  const bad: [string, RegExp][] = [
    ["/api/filter?expression=tcp%20port", /expected/],
    [`/api/filter?expression=${encodeURIComponent("port 1 or ".repeat(200) + "port 2")}`, /at most 1024/],
    ["/api/filter?expression=port%201%00", /control characters/],
    ["/api/filter?expression=ether%20host%201:2:3:4:5:6", /./],
    ["/api/connections?filter=tcp&filter=udp", /one filter/],
    ["/api/connections?filter=port%2099999", /./],
    ["/api/events?since=yesterday", /since must be a time/],
    ["/api/events?filter=%28tcp", /./],
  ];
  for (const [path, message] of bad) {
    const answer = await get(port, path);
    assert.equal(answer.status, 400, path);
    assert.match(String(answer.headers["content-type"]), /application\/json/);
    assert.match(errorMessage(answer), message, path);
  }
  assert.deepEqual(JSON.parse((await get(port, "/api/filter?expression=tcp%20port%20443")).body), { expression: "tcp port 443" });
  assert.deepEqual(JSON.parse((await get(port, "/api/filter?expression=")).body), { expression: "" });
  const connections = JSON.parse((await get(port, "/api/connections?filter=tcp")).body);
  assert.ok(Array.isArray(connections.rows));
  const stream = await get(port, "/api/events?since=0");
  assert.equal(stream.status, 200);
  assert.match(String(stream.headers["content-type"]), /text\/event-stream/);

  assert.equal((await get(port, "/", {}, "POST")).status, 405);
  assert.equal((await get(port, "/", {}, "DELETE")).status, 405);
  const rebinding = await get(port, "/api/connections", { host: "attacker.example" });
  assert.equal(rebinding.status, 403);
  assert.match(errorMessage(rebinding), /loopback host name/);
  assert.equal((await get(port, "/healthz")).status, 200);
});

test("listening on all addresses, every path but /healthz needs the token; /?token= moves it into a cookie", { timeout: 60_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root: the dashboard attaches its watchers")) return;
  const access = DashboardAccess.forListen("0.0.0.0");
  // Bound to every address (beyond loopback); this test connects through 127.0.0.1 only.
  const server = await MetricsServer.start({ listen: { host: "0.0.0.0", port: 0 }, sources: [], dashboard: new DashboardFeed({ historySeconds: 10 }), access });
  t.after(() => server.close());
  const port = server.address.port;
  const token = access.token!;
  for (const path of ["/", "/metrics", "/api/connections", "/api/events", "/assets/dashboard.js"]) {
    const answer = await get(port, path);
    assert.equal(answer.status, 401, path);
    assert.match(errorMessage(answer), /needs its token/);
    assert.equal((await get(port, path, { authorization: "Bearer wrong-token-wrong-token" })).status, 401, path);
  }
  assert.equal((await get(port, "/healthz")).status, 200);
  assert.equal((await get(port, "/metrics", { authorization: `Bearer ${token}` })).status, 200);
  const redirect = await get(port, `/?token=${token}`);
  assert.equal(redirect.status, 303);
  assert.equal(redirect.headers.location, "/");
  const cookie = String(redirect.headers["set-cookie"]).split(";")[0]!;
  assert.match(String(redirect.headers["set-cookie"]), /HttpOnly; SameSite=Strict/);
  assert.equal((await get(port, "/", { cookie })).status, 200);
  assert.equal((await get(port, "/api/connections", { cookie })).status, 200);
});

test("the server, its sources and the dashboard feed refuse bad options, naming the option", async () => {
  const check = (pattern: RegExp) => (error: unknown) => error instanceof UsageError && pattern.test(error.message);
  await assert.rejects(MetricsServer.start({ sources: [{ name: "x" }] as never }), check(/^metrics server: options\.sources\[0\]\.register must be a function, got undefined/));
  await assert.rejects(MetricsServer.start({ sources: [], listen: { host: "127.0.0.1", port: 70000 } }), check(/options\.listen\.port must be an integer from 0 to 65535, got 70000/));
  await assert.rejects(MetricsServer.start({ sources: [], dashboard: {} as never }), check(/options\.dashboard must be a DashboardFeed, got an object \(Object\)/));
  await assert.rejects(MetricsServer.start({ sources: [], access: "token" as never }), check(/options\.access must be a DashboardAccess \(from DashboardAccess\.forListen\), got "token"/));
  const cases: [() => unknown, RegExp][] = [
    [() => new TrafficMetricsSource({ ports: [80, 0] }), /^traffic metrics: options\.ports\[1\] must be an integer from 1 to 65535, got 0/],
    [() => new TrafficMetricsSource({ interfaces: "lo" as never }), /options\.interfaces must be an array, got "lo"/],
    [() => new TcpMetricsSource({ topPorts: -1 }), /^TCP metrics: options\.topPorts must be an integer ≥ 0, got -1/],
    [() => new BalancerMetricsSource({ stateRoot: 42 as never }), /^balancer metrics: options\.stateRoot must be a string, got 42/],
    [() => new DashboardFeed({ interval: 0 }), /^dashboard feed: options\.interval must be an integer ≥ 10, got 0/],
    [() => new DashboardFeed({ historySeconds: 86401 }), /options\.historySeconds must be an integer from 1 to 86400, got 86401/],
    [() => new DashboardFeed({ alerts: {} as never }), /options\.alerts\.recent must be a function, got undefined/],
    [() => new JsonLinesAlertSource("alerts.jsonl", { tailBytes: 0 }), /^alert source: options\.tailBytes must be an integer ≥ 1, got 0/],
    [() => readControlStatus({ offenders: -1 }), /^read control status: options\.offenders must be an integer ≥ 0, got -1/],
  ];
  for (const [call, pattern] of cases) assert.throws(call, check(pattern), pattern.source);
});
