/**
 * Per-source limits and the SYN-flood guard on a routed testbed: the router's
 * client-side ingress carries the limiter; the server counts what arrives.
 *
 * Expectation: the limiter is a token bucket, so what it lets through depends
 * on when the datagrams came, not only on how many. On a loaded machine a
 * sender stalls and then catches up with a burst, and the bucket (rightly)
 * forfeits the credit that overflowed during the stall: burst + rate ×
 * sending time over-estimates what passes. The sender records the time of
 * every datagram, and the expected count is the bucket's own rule applied to
 * those times; the received count must be within 5% of it.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { RateLimiter, parseRate } from "../../src/firewall/rate-limiter.js";
import { StateStore } from "../../src/state/state-store.js";
import { UsageError } from "../../src/sys/errors.js";
import { CounterServer, pacedUdpScript, tcpConnects } from "../support/control-traffic.js";
import { isRoot, skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";
import { RoutedTestbed } from "../support/routed-testbed.js";
import { removeStateRoot, stateEnvironment, testStateRoot } from "../support/state-root.js";
import { spawnSync } from "node:child_process";

const stateRoot = testStateRoot("c");
const env = stateEnvironment(stateRoot);
let bed: RoutedTestbed | undefined;
let server: CounterServer | undefined;
const politeAddress = "192.0.2.3";

before(async () => {
  if (!isRoot()) return;
  bed = RoutedTestbed.create("c");
  bed.exec(bed.client, ["ip", "addr", "add", `${politeAddress}/24`, "dev", bed.clientInterface]);
  server = await CounterServer.start(bed, bed.server, [5001, 5002], [8080]);
});

after(async () => {
  await server?.stop();
  bed?.destroy();
  removeStateRoot(stateRoot);
});

function netbpf(...args: string[]) {
  return bed!.netbpf(bed!.router, env, ...args);
}

/** How many datagrams sent at `times` (ms) a bucket of `burst` packets refilled at `rate` per second passes; it starts full. */
function tokenBucketPasses(times: number[], rate: number, burst: number): number {
  let credit = burst;
  let last = times[0] ?? 0;
  let passed = 0;
  for (const time of times) {
    credit = Math.min(burst, credit + ((time - last) * rate) / 1000);
    last = time;
    if (credit >= 1) {
      credit -= 1;
      passed++;
    }
  }
  return passed;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("rates parse with units and ranges", () => {
  assert.deepEqual(parseRate("1000pps"), { unit: "packets", perSecond: 1000 });
  assert.deepEqual(parseRate("2mbit"), { unit: "bits", perSecond: 2_000_000 });
  assert.deepEqual(parseRate("1.5mbit"), { unit: "bits", perSecond: 1_500_000 });
  for (const bad of ["0pps", "fast", "1000", "200gbit", "-5pps", "1bit"]) assert.throws(() => parseRate(bad), UsageError, bad);
});

test("a per-source packet-rate limit passes what its token bucket allows for the send times (within 5%) while a well-behaved source is untouched", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and tc")) return;
  const b = bed!;
  const rate = 200;
  const burst = 20;
  const added = netbpf("limit", "-i", b.routerClientSide, "--rate", `${rate}pps`, "--burst", String(burst), "-f", "udp dst port 5001");
  assert.equal(added.status, 0, added.stderr);
  assert.match(added.stdout, /tc ingress: tcx/);
  const before = await server!.sources();
  const flood = b.start(b.client, [process.execPath, "--input-type=module", "-e", pacedUdpScript({ bind: b.clientAddress, host: b.serverAddress, port: 5001, pps: 1000, seconds: 5 })]);
  // Well-behaved even when the machine stalls it: never a catch-up burst, so never more than the limit allows.
  const polite = b.start(b.client, [process.execPath, "--input-type=module", "-e", pacedUdpScript({ bind: politeAddress, host: b.serverAddress, port: 5001, pps: 50, seconds: 5, catchUp: false })]);
  const collect = (child: typeof flood) => new Promise<{ sent: number; elapsedMs: number; times: number[] }>((resolve, reject) => {
    let text = "";
    child.stdout.on("data", (chunk) => (text += chunk));
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(text.trim())) : reject(new Error(`sender exited ${code}`))));
  });
  const [floodResult, politeResult] = await Promise.all([collect(flood), collect(polite)]);

  // The program's counters are final once the senders are gone; the server may still be reading its socket.
  const status = netbpf("limit", "status", "-i", b.routerClientSide, "--json");
  assert.equal(status.status, 0, status.stderr);
  const lines = status.stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
  const rule = lines.find((line) => line.type === "limit")!;
  let afterCounts: Record<string, number> = {};
  const received = (address: string) => (afterCounts[address] ?? 0) - (before[address] ?? 0);
  await waitFor("the server to read what the limiter passed", async () => {
    afterCounts = await server!.sources();
    return received(b.clientAddress) + received(politeAddress) >= (rule.passed as number);
  });

  const expected = tokenBucketPasses(floodResult.times, rate, burst);
  assert.ok(floodResult.sent > expected * 2, `the flood must exceed the limit: sent ${floodResult.sent}, limit allows ${expected}`);
  const got = received(b.clientAddress);
  const naive = burst + (rate * floodResult.elapsedMs) / 1000;
  assert.ok(Math.abs(got - expected) <= expected * 0.05, `limited source: received ${got}, the bucket allows ${expected} ± 5% for these send times (burst + rate × time: ${naive.toFixed(0)}; sent ${floodResult.sent} in ${floodResult.elapsedMs.toFixed(0)} ms)`);
  t.diagnostic(`limited source: received ${got}, bucket model ${expected}, burst + rate × time ${naive.toFixed(0)}`);
  assert.equal(received(politeAddress), politeResult.sent, "the well-behaved source loses nothing");

  // The program saw every datagram: passed + dropped = sent, and what passed arrived.
  assert.equal((rule.passed as number) + (rule.dropped as number), floodResult.sent + politeResult.sent, "passed + dropped = sent");
  assert.equal(rule.passed, got + received(politeAddress), "passed = received");
  const top = lines.find((line) => line.type === "source")!;
  assert.equal(top.address, b.clientAddress, "the flooding source is the top offender");
  const table = netbpf("limit", "status");
  assert.match(table.stdout, new RegExp(`${b.clientAddress.replace(/\./g, "\\.")}`));
  assert.equal(netbpf("limit", "delete", String(rule.id), "-i", b.routerClientSide).status, 0);
});

test("bad limits are refused with exit 2 and change nothing", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and tc")) return;
  const b = bed!;
  const before = netbpf("limit", "status", "--json").stdout;
  for (const args of [
    ["limit", "-i", b.routerClientSide, "--rate", "0pps"],
    ["limit", "-i", b.routerClientSide, "--rate", "999gbit"],
    ["limit", "-i", b.routerClientSide],
    ["limit", "--rate", "10pps"],
    ["limit", "-i", b.routerClientSide, "--rate", "10pps", "-f", "udp port"],
    ["limit", "-i", b.routerClientSide, "--rate", "1mbit", "--burst", "100"],
    ["limit", "syn", "-i", b.routerClientSide],
  ]) {
    const result = netbpf(...args);
    assert.equal(result.status, 2, `${args.join(" ")}: ${result.stderr}`);
    // One line; a filter error adds the expression with a caret under the mistake, as everywhere else.
    const lines = result.stderr.trim().split("\n");
    if (args.includes("-f")) assert.deepEqual([lines.length, /^ +\^+$/.test(lines[2] ?? "")], [3, true], result.stderr);
    else assert.equal(lines.length, 1, result.stderr);
  }
  assert.equal(netbpf("limit", "status", "--json").stdout, before);
});

test("a SYN flood from many spoofed sources does not stop a legitimate client", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and tc")) return;
  if (skipUnlessTool(t, spawnSync("hping3", ["--version"]).status !== null && !spawnSync("hping3", ["--version"]).error, "hping3 is not installed")) return;
  const b = bed!;
  const guard = netbpf("limit", "syn", "-i", b.routerClientSide, "--port", "8080", "--rate", "5", "--burst", "5");
  assert.equal(guard.status, 0, guard.stderr);
  // Random spoofed sources, and one spoofed source sending far more than its share.
  const random = b.start(b.client, ["hping3", "-q", "-S", "-p", "8080", "-i", "u500", "--rand-source", b.serverAddress]);
  const heavy = b.start(b.client, ["hping3", "-q", "-S", "-p", "8080", "-i", "u2000", "-a", "203.0.113.7", b.serverAddress]);
  try {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (let attempt = 0; attempt < 3; attempt++) assert.equal(tcpConnects(b, b.serverAddress, 8080), "ok", `legitimate connection ${attempt + 1} during the flood`);
  } finally {
    random.kill("SIGKILL");
    heavy.kill("SIGKILL");
  }
  const limiter = RateLimiter.installed({ store: StateStore.open({ root: stateRoot }) })[0]!;
  const rule = limiter.rules().find((candidate) => candidate.kind === "syn-guard")!;
  assert.ok(rule.dropped > 100n, `the guard dropped ${rule.dropped} SYNs`);
  const sources = limiter.topSources(100_000).filter((source) => source.rule === rule.id);
  assert.equal(sources[0]!.address, "203.0.113.7", "the heavy spoofed source tops the offenders");
  assert.ok(sources.length > 100, `many sources tracked (${sources.length})`);
  const legitimate = sources.find((source) => source.address === b.clientAddress);
  assert.equal(legitimate?.dropped ?? 0n, 0n, "the legitimate client lost no SYN");
});

test("SYN cookies: the server's limiter answers a spoofed SYN flood with cookies and a legitimate client still connects", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and tc")) return;
  if (skipUnlessTool(t, spawnSync("hping3", ["--version"]).status !== null && !spawnSync("hping3", ["--version"]).error, "hping3 is not installed")) return;
  const b = bed!;
  const serverNetbpf = (...args: string[]) => b.netbpf(b.server, env, ...args);
  const nstat = () => {
    const out = b.exec(b.server, ["nstat", "-az", "TcpExtSyncookiesRecv", "TcpExtSyncookiesFailed", "TcpExtListenDrops"]).stdout;
    return Object.fromEntries(out.split("\n").map((line: string) => /^(\S+)\s+(\d+)/.exec(line)).filter((m) => m).map((m) => [m![1]!, Number(m![2])]));
  };
  // tcp_syncookies=2: cookies for every SYN (with the default 1 the kernel makes cookies only once the listen queue is full).
  b.exec(b.server, ["sysctl", "-q", "-w", "net.ipv4.tcp_syncookies=2"]);
  const guard = serverNetbpf("limit", "syn", "-i", b.serverInterface, "--port", "8080", "--rate", "1000", "--burst", "100");
  assert.equal(guard.status, 0, guard.stderr);
  assert.match(guard.stdout, /mode: SYN cookies.*tcp_syncookies=2: every SYN/);
  const id = /^limit (\d+)/.exec(guard.stdout)![1]!;
  const before = nstat();
  const random = b.start(b.client, ["hping3", "-q", "-S", "-p", "8080", "-i", "u200", "--rand-source", b.serverAddress]);
  try {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    for (let attempt = 0; attempt < 3; attempt++) assert.equal(tcpConnects(b, b.serverAddress, 8080), "ok", `legitimate connection ${attempt + 1} during the flood`);
    assert.equal(tcpConnects(b, b.serverAddress6, 8080), "ok", "legitimate IPv6 connection during the flood");
  } finally {
    random.kill("SIGKILL");
  }
  const after = nstat();
  const status = serverNetbpf("limit", "status", "-i", b.serverInterface, "--json");
  assert.equal(status.status, 0, status.stderr);
  const rule = status.stdout.trim().split("\n").map((line) => JSON.parse(line) as Record<string, any>).find((line) => line.type === "limit" && String(line.id) === id)!;
  assert.equal(rule.synMode, "cookies");
  assert.ok(Number(rule.cookies.sent) > 100, `cookies sent: ${rule.cookies.sent}`);
  assert.ok(Number(rule.cookies.validated) >= 4, `cookies validated: ${rule.cookies.validated}`);
  assert.equal(Number(rule.cookies.fallback), 0, "no SYN reached the listener");
  // The kernel's listener accepted the program's cookies (its own counter), and its queue never overflowed.
  assert.ok(after.TcpExtSyncookiesRecv! - before.TcpExtSyncookiesRecv! >= 4, `kernel SyncookiesRecv ${before.TcpExtSyncookiesRecv} → ${after.TcpExtSyncookiesRecv}`);
  assert.equal(after.TcpExtListenDrops, before.TcpExtListenDrops, "no listen queue drops");
  const table = serverNetbpf("limit", "status", "-i", b.serverInterface);
  assert.match(table.stdout, /answered with SYN cookies/);
  assert.equal(serverNetbpf("limit", "delete", id, "-i", b.serverInterface).status, 0);
});

test("open and installed check their arguments before opening the state store", () => {
  const refused = (pattern: RegExp) => (error: Error) => error instanceof UsageError && pattern.test(error.message);
  assert.throws(() => RateLimiter.open(42 as never), refused(/interfaceName must be a string, got 42/));
  assert.throws(() => RateLimiter.open("lo", { maximumSources: 8 }), refused(/options\.maximumSources must be an integer from 16 to 16777216, got 8/));
  assert.throws(() => RateLimiter.open("lo", { store: "/tmp/state" as never }), refused(/options\.store must be a StateStore/));
  assert.throws(() => RateLimiter.installed("lo" as never), refused(/options must be an object, got "lo"/));
});
