/**
 * The dashboard end to end, in a real headless browser (Debian's chromium
 * driven by playwright-core): `netbpf serve --ui` runs in a test namespace,
 * watching its veth, listening on the namespace's veth address (beyond
 * loopback: a token is required); the browser runs in the same namespace.
 * Known traffic flows from the other namespace. Screenshots of the main
 * views are written to a temporary folder, or to docs/dashboard/ with
 * NETBPF_UPDATE_SCREENSHOTS=1.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { cliPath } from "../support/cli.js";
import { isRoot, skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";
import { removeStateRoot, stateEnvironment, testStateRoot } from "../support/state-root.js";
import { Testbed } from "../support/testbed.js";
import { ScriptProcess } from "../support/traffic-scripts.js";

// The functions given to page.evaluate/waitForFunction run in the page: its globals, untyped here (the project compiles without the DOM library).
declare const document: any;
declare const window: any;
type HTMLElement = any;
type HTMLTableRowElement = any;

const chromiumPath = "/usr/bin/chromium";
const repositoryRoot = fileURLToPath(new URL("../../../", import.meta.url));
/** IP bytes per second the bulk sender puts on the wire: 1000 full segments of 1448 payload + 52 header bytes. */
const segmentPayload = 1448;
const segmentsPerSecond = 1000;
const expectedBytesPerSecond = segmentsPerSecond * (segmentPayload + 52);

/** A TCP server on host:port that reads and discards; prints "ready". */
function sinkScript(host: string, ports: number[]): string {
  return `
import net from "node:net";
for (const port of ${JSON.stringify(ports)}) {
  const server = net.createServer((socket) => { socket.on("data", () => {}); socket.on("error", () => {}); });
  await new Promise((resolve) => server.listen(port, ${JSON.stringify(host)}, resolve));
}
process.stdout.write("ready\\n");
setTimeout(() => process.exit(0), 300000);
`;
}

/**
 * Sends full segments to host:port at a steady rate (the cumulative target is
 * kept, so a late timer catches up); prints "connected" once connected.
 */
function senderScript(host: string, port: number, segments: number): string {
  return `
import net from "node:net";
const socket = net.connect({ host: ${JSON.stringify(host)}, port: ${port} });
socket.on("error", () => process.exit(1));
await new Promise((resolve) => socket.once("connect", resolve));
process.stdout.write("connected\\n");
const start = process.hrtime.bigint();
const chunk = Buffer.alloc(${segmentPayload}, 97);
let sent = 0;
setInterval(() => {
  const due = Math.floor((Number(process.hrtime.bigint() - start) / 1e9) * ${segments});
  for (; sent < due; sent++) socket.write(chunk);
}, 5);
setTimeout(() => process.exit(0), 300000);
`;
}

/** UDP datagrams to host:port, `perSecond` of them, and TCP SYNs to a blocked port. */
function noiseScript(host: string, udpPort: number, blockedPort: number, perSecond: number): string {
  return `
import dgram from "node:dgram";
import net from "node:net";
const udp = dgram.createSocket("udp4");
setInterval(() => udp.send(Buffer.alloc(200), ${udpPort}, ${JSON.stringify(host)}), ${Math.round(1000 / perSecond)});
setInterval(() => { const s = net.connect({ host: ${JSON.stringify(host)}, port: ${blockedPort} }); s.on("error", () => {}); setTimeout(() => s.destroy(), 900); }, 1000);
setTimeout(() => process.exit(0), 300000);
`;
}

async function waitFor(what: string, check: () => boolean, timeout = 20_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** The table's rows as the page shows them. */
function tableRows(page: Page): Promise<{ local: string; remote: string; process: string; in: number }[]> {
  return page.$$eval("#connections-table tbody tr[data-key]", (rows) =>
    rows.map((row) => ({
      local: row.querySelector(".col-local")?.textContent ?? "",
      remote: row.querySelector(".col-remote")?.textContent ?? "",
      process: row.querySelector(".col-process")?.textContent ?? "",
      in: Number((row.querySelector(".col-in") as HTMLElement | null)?.dataset.value ?? NaN),
    })),
  );
}

/** JavaScript heap in use after a garbage collection (CDP). */
async function heapAfterCollection(page: Page): Promise<number> {
  const session = await page.context().newCDPSession(page);
  try {
    await session.send("HeapProfiler.collectGarbage");
    const usage = (await session.send("Runtime.getHeapUsage")) as { usedSize: number };
    return usage.usedSize;
  } finally {
    await session.detach();
  }
}

test("the dashboard in a browser: token beyond loopback, the busiest port on top at the right rate, new connections within 2 s, the filter narrows the table, rules and alerts shown, a bounded page heap", { timeout: 240_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces, tcx and tracepoints")) return;
  if (skipUnlessTool(t, existsSync(chromiumPath), "chromium is not installed (apt-get install chromium)")) return;
  const bed = Testbed.create("ui", { disableIpv6: true });
  const stateRoot = testStateRoot("ui");
  const folder = mkdtempSync(join(tmpdir(), "nbui-dashboard-"));
  const processes: ScriptProcess[] = [];
  let browser: Browser | undefined;
  t.after(async () => {
    await browser?.close().catch(() => {});
    for (const process of processes.reverse()) process.kill();
    for (const process of processes) await process.exited(5000);
    removeStateRoot(stateRoot);
    bed.destroy();
    rmSync(folder, { recursive: true, force: true });
  });
  const inA = ["nsenter", `--net=/run/netns/${bed.a.namespace}`];
  const inB = ["nsenter", `--net=/run/netns/${bed.b.namespace}`];
  const [bulkPort, newPort, udpPort, blockedPort] = [5201, 6301, 7001, 9];

  // Control tools on the server's interface: a block rule (hit by SYNs to port 9) and a per-source limit on UDP (exceeded).
  const control = (...args: string[]) => spawnSync(inA[0]!, [...inA.slice(1), process.execPath, cliPath, ...args], { encoding: "utf8", env: stateEnvironment(stateRoot), timeout: 60_000 });
  const blocked = control("block", "-i", bed.a.interface, "-p", "tcp", "--port", String(blockedPort), "--comment", "discard service");
  assert.equal(blocked.status, 0, blocked.stderr);
  const limited = control("limit", "-i", bed.a.interface, "--rate", "10pps", "-p", "udp", "--port", String(udpPort));
  assert.equal(limited.status, 0, limited.stderr);
  const alerts = join(folder, "alerts.jsonl");
  writeFileSync(alerts, `${JSON.stringify({ time: new Date().toISOString(), severity: "warning", kind: "new-listener", message: `a process listens on ${bed.a.address}:${bulkPort}` })}\nnot json\n`);

  const sink = ScriptProcess.node(sinkScript(bed.a.address, [bulkPort, newPort]), inA);
  processes.push(sink);
  assert.equal(await sink.nextLine(), "ready", sink.stderr);

  const serve = new ScriptProcess([...inA, "env", `NETBPF_STATE_DIR=${stateRoot}`, process.execPath, cliPath, "serve", "--ui", "--listen", `${bed.a.address}:9435`, "-i", bed.a.interface, "--no-tcp", "--no-traffic", "--history", "12", "--alerts", alerts]);
  processes.push(serve);
  await waitFor("the dashboard address on stderr", () => /dashboard on (\S+)/.test(serve.stderr) || serve.child.exitCode !== null, 60_000);
  const address = /dashboard on (http:\/\/\S+\/)\?token=([A-Za-z0-9_-]+)/.exec(serve.stderr);
  assert.ok(address, `a token is printed when listening beyond loopback: ${serve.stderr}`);
  const [, base, token] = address;

  const bulk = ScriptProcess.node(senderScript(bed.a.address, bulkPort, segmentsPerSecond), inB);
  processes.push(bulk);
  assert.equal(await bulk.nextLine(), "connected", bulk.stderr);
  processes.push(ScriptProcess.node(noiseScript(bed.a.address, udpPort, blockedPort, 50), inB));

  // The browser runs in the server's namespace (a wrapper enters it; playwright talks to it over a pipe).
  const wrapper = join(folder, "chromium-in-namespace");
  writeFileSync(wrapper, `#!/bin/sh\nexec nsenter --net=/run/netns/${bed.a.namespace} ${chromiumPath} "$@"\n`);
  chmodSync(wrapper, 0o755);
  browser = await chromium.launch({ executablePath: wrapper, args: ["--no-sandbox", "--enable-precise-memory-info"] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: "light" });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));

  // Beyond loopback, nothing but /healthz answers without the token.
  for (const path of ["/", "/api/connections", "/metrics", "/assets/dashboard.js"]) {
    const response = await page.goto(`${base}${path.slice(1)}`);
    assert.equal(response?.status(), 401, path);
    assert.match(await response!.text(), /needs its token/);
  }
  const wrong = await page.goto(`${base}?token=${"x".repeat(token!.length)}`);
  assert.equal(wrong?.status(), 401);
  assert.equal((await page.goto(`${base}healthz`))?.status(), 200);

  // With the token: the page (the token moves into a cookie), its live table.
  const opened = await page.goto(`${base}?token=${token}`);
  assert.equal(opened?.status(), 200);
  assert.equal(new URL(page.url()).search, "", "the token left the address bar");
  await page.waitForSelector("#connections-table tbody tr[data-key]", { timeout: 20_000 });

  // The busiest connection is the bulk sender's, at the rate it sends (IP bytes), within 5 %.
  const rates: number[] = [];
  for (let reading = 0; reading < 5; reading++) {
    await page.waitForFunction((previous) => document.getElementById("status")?.textContent !== previous, await page.textContent("#status"), { timeout: 5000 });
    const rows = await tableRows(page);
    assert.ok(rows.length > 0);
    assert.match(rows[0]!.local, new RegExp(`:${bulkPort}$`), `the top row is port ${bulkPort}: ${JSON.stringify(rows.slice(0, 3))}`);
    rates.push(rows[0]!.in);
  }
  const rate = median(rates);
  assert.ok(Math.abs(rate - expectedBytesPerSecond) / expectedBytesPerSecond < 0.05, `top row ${rate} B/s, expected ${expectedBytesPerSecond} (readings ${rates.map(Math.round).join(", ")})`);
  t.diagnostic(`top row: ${rates.map(Math.round).join(", ")} B/s (expected ${expectedBytesPerSecond})`);
  const heapBefore = await heapAfterCollection(page);

  // Rules with hit counters, limit offenders and the alert are shown.
  await page.waitForFunction((port) => document.getElementById("control")?.textContent?.includes(`dport ${port}`) || document.getElementById("control")?.textContent?.includes(`port ${port}`), blockedPort, { timeout: 10_000 });
  await page.waitForFunction((address) => document.getElementById("control")?.textContent?.includes(address), bed.b.address, { timeout: 15_000 });
  assert.match((await page.textContent("#alerts")) ?? "", /new-listener/);

  // A new connection shows within 2 seconds.
  const newcomer = ScriptProcess.node(senderScript(bed.a.address, newPort, 20), inB);
  processes.push(newcomer);
  assert.equal(await newcomer.nextLine(), "connected", newcomer.stderr);
  const connectedAt = Date.now();
  await page.waitForFunction((port) => [...document.querySelectorAll("#connections-table tbody .col-local")].some((cell) => cell.textContent?.endsWith(`:${port}`)), newPort, { timeout: 10_000, polling: 50 });
  const appearedAfter = Date.now() - connectedAt;
  t.diagnostic(`the new connection appeared after ${appearedAfter} ms`);
  assert.ok(appearedAfter < 2000, `the new connection appeared after ${appearedAfter} ms`);

  await page.screenshot({ path: join(folder, "dashboard-light.png"), fullPage: true });

  // The filter is compiled on the server: an error is shown, a valid one narrows the table.
  const before = (await tableRows(page)).length;
  await page.fill("#filter", "tcp port");
  await page.press("#filter", "Enter");
  await page.waitForSelector("#filter-error:not([hidden])");
  assert.match((await page.textContent("#filter-error")) ?? "", /expected/);
  await page.fill("#filter", `tcp and port ${newPort}`);
  await page.press("#filter", "Enter");
  await page.waitForFunction((port) => {
    const cells = [...document.querySelectorAll("#connections-table tbody .col-local")];
    return cells.length > 0 && cells.every((cell) => cell.textContent?.endsWith(`:${port}`));
  }, newPort, { timeout: 10_000 });
  const narrowed = await tableRows(page);
  assert.ok(narrowed.length < before, `${narrowed.length} rows after the filter, ${before} before`);
  assert.ok(await page.isHidden("#filter-error"));
  await page.screenshot({ path: join(folder, "dashboard-filter.png") });

  // Keyboard: the table's rows take focus and arrow keys move it.
  await page.fill("#filter", "");
  await page.press("#filter", "Enter");
  await page.waitForFunction(() => document.querySelectorAll("#connections-table tbody tr[data-key]").length > 1, undefined, { timeout: 10_000 });
  await page.focus("#connections-table tbody tr[tabindex='0']");
  await page.keyboard.press("ArrowDown");
  assert.equal(await page.evaluate(() => [...document.querySelectorAll("#connections-table tbody tr")].indexOf(document.activeElement as HTMLTableRowElement)), 1);

  // Pausing keeps the view as it is while data keeps arriving.
  await page.click("#pause");
  const frozen = await page.textContent("#chart-ports-summary");
  await page.waitForTimeout(2500);
  assert.equal(await page.textContent("#chart-ports-summary"), frozen);
  assert.equal(await page.getAttribute("#pause", "aria-pressed"), "true");
  await page.click("#pause");

  // The history ring (12 s here) is full by now: the page's heap stays bounded while updates keep coming.
  await page.waitForTimeout(8000);
  const heapAfter = await heapAfterCollection(page);
  t.diagnostic(`page heap after a collection: ${heapBefore} → ${heapAfter} bytes`);
  assert.ok(heapAfter - heapBefore < 2 * 1024 * 1024, `page heap ${heapBefore} → ${heapAfter} bytes`);

  // The other views: dark theme, a phone-sized screen.
  await page.emulateMedia({ colorScheme: "dark" });
  await page.waitForTimeout(1200);
  await page.screenshot({ path: join(folder, "dashboard-dark.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: "light" });
  await page.waitForTimeout(1200);
  await page.screenshot({ path: join(folder, "dashboard-phone.png") });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), "no horizontal scrolling on a phone-sized screen");
  assert.deepEqual(pageErrors, []);

  for (const name of ["dashboard-light.png", "dashboard-filter.png", "dashboard-dark.png", "dashboard-phone.png"]) {
    assert.ok(statSync(join(folder, name)).size > 10_000, name);
    if (process.env.NETBPF_UPDATE_SCREENSHOTS === "1") {
      mkdirSync(join(repositoryRoot, "docs/dashboard"), { recursive: true });
      writeFileSync(join(repositoryRoot, "docs/dashboard", name), (await import("node:fs")).readFileSync(join(folder, name)));
    }
  }
});
