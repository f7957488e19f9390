import { test } from "node:test";
import assert from "node:assert/strict";
import { cliPath, runCli, runCliAsNobody } from "../support/cli.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { Testbed } from "../support/testbed.js";
import { clientScript, ScriptProcess, serverScript, TcpdumpReference, type ClientReport, type ServerReady, type ServerReport } from "../support/traffic-scripts.js";
import type { TrafficRow, TrafficSnapshot } from "../../src/monitor/traffic-watcher.js";

const mebibyte = 1024 * 1024;
const sizes = [1 * mebibyte, 2 * mebibyte, 3 * mebibyte];
const udpDatagrams = 200;
const udpSize = 1000;

/**
 * Counted payload: within 2% of what crossed the wire by tcpdump (the
 * reference: it includes TCP retransmissions, which this loaded machine has
 * even on loopback), and never less than what the application sent.
 */
function assertCounted(actual: number, sent: number, wire: number | undefined, what: string): void {
  assert.ok(wire !== undefined, `${what}: tcpdump saw no such flow`);
  assert.ok(actual >= sent, `${what}: counted ${actual}, less than the ${sent} bytes sent`);
  assert.ok(Math.abs(actual - wire) <= wire * 0.02, `${what}: counted ${actual}, tcpdump saw ${wire} on the wire (sent ${sent}; tolerance 2%)`);
}

function startTop(args: string[], prefix: string[] = []): ScriptProcess {
  return new ScriptProcess([...prefix, process.execPath, cliPath, "top", "--json", ...args]);
}

async function waitForStderr(process: ScriptProcess, text: string, timeout = 20_000): Promise<void> {
  const start = Date.now();
  while (!process.stderr.includes(text)) {
    if (Date.now() - start > timeout || process.child.exitCode !== null) throw new Error(`no "${text}" on stderr: ${process.stderr.trim()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Stops top (SIGINT: it prints a last snapshot) and returns that snapshot. */
async function lastSnapshot(top: ScriptProcess): Promise<TrafficSnapshot> {
  top.child.kill("SIGINT");
  const lines = await top.rest(20_000);
  assert.equal(await top.exited(), 0, `top failed: ${top.stderr}`);
  assert.ok(lines.length > 0, `top printed nothing: ${top.stderr}`);
  return JSON.parse(lines.at(-1)!) as TrafficSnapshot;
}

function findRow(rows: TrafficRow[], protocol: string, localPort: number, remotePort: number): TrafficRow {
  const row = rows.find((r) => r.protocol === protocol && r.localPort === localPort && r.remotePort === remotePort);
  assert.ok(row, `no ${protocol} row ${localPort} → ${remotePort} in ${JSON.stringify(rows.map((r) => r.key))}`);
  return row;
}

/** Server and client on `host`; top watching with the given arguments; checks every flow from both ends. */
async function knownTransfers(options: { host: string; serverPrefix?: string[]; clientPrefix?: string[]; topArgs: string[]; topPrefix?: string[]; sides: "both" | "client"; topFirst?: boolean; reference: { interface: string; prefix?: string[] } }): Promise<void> {
  let server: ScriptProcess | undefined;
  let top: ScriptProcess | undefined;
  let client: ScriptProcess | undefined;
  let tcpdump: TcpdumpReference | undefined;
  try {
    let ready: ServerReady;
    if (options.topFirst) {
      // Attached before the server binds: its process comes from the kernel hook (post_bind).
      top = startTop(["--by", "conn", "--interval", "1", ...options.topArgs, `host ${options.host}`], options.topPrefix);
      await waitForStderr(top, "netbpf: watching");
      server = ScriptProcess.node(serverScript(options.host, sizes.length, udpDatagrams), options.serverPrefix);
      ready = await server.nextJson<ServerReady>();
    } else {
      // The server's sockets exist before top starts: their process is found in procfs.
      server = ScriptProcess.node(serverScript(options.host, sizes.length, udpDatagrams), options.serverPrefix);
      ready = await server.nextJson<ServerReady>();
      top = startTop(["--by", "conn", "--port", String(ready.tcpPort), "--port", String(ready.udpPort), "--interval", "1", ...options.topArgs], options.topPrefix);
      await waitForStderr(top, "netbpf: watching");
    }
    tcpdump = await TcpdumpReference.start(options.reference.interface, `port ${ready.tcpPort} or port ${ready.udpPort}`, options.reference.prefix, options.host);
    client = ScriptProcess.node(clientScript(options.host, ready.tcpPort, ready.udpPort, sizes, udpDatagrams, udpSize), options.clientPrefix);
    const sent = await client.nextJson<ClientReport>();
    const received = await server.nextJson<ServerReport>();
    assert.deepEqual(received.connections.map((c) => c.bytes).sort((a, b) => a - b), sizes, "the server received what was sent");
    const snapshot = await lastSnapshot(top);
    const wire = await tcpdump.payloadByFlow();
    assert.equal(snapshot.by, "conn");
    sent.tcpLocalPorts.forEach((clientPort, index) => {
      const clientRow = findRow(snapshot.rows, "tcp", clientPort, ready.tcpPort);
      assertCounted(clientRow.payloadOut, sizes[index]!, wire.get(`${clientPort}>${ready.tcpPort}`), `client side of connection ${index + 1}`);
      assert.ok(clientRow.bytesOut > clientRow.payloadOut, "IP bytes include headers");
      assert.ok(clientRow.packetsOut >= 2 && clientRow.packetsIn >= 2);
      assert.equal(clientRow.process?.pid, sent.pid, `the client's process (top ${options.topArgs.join(" ")}; row ${JSON.stringify(clientRow)})`);
      if (options.sides === "both") {
        const serverRow = findRow(snapshot.rows, "tcp", ready.tcpPort, clientPort);
        assertCounted(serverRow.payloadIn, sizes[index]!, wire.get(`${clientPort}>${ready.tcpPort}`), `server side of connection ${index + 1}`);
        assert.equal(serverRow.process?.pid, ready.pid, "the accepting server's process (owner of the port)");
      }
    });
    const udpClient = findRow(snapshot.rows, "udp", sent.udpLocalPort, ready.udpPort);
    assertCounted(udpClient.payloadOut, udpDatagrams * udpSize, wire.get(`${sent.udpLocalPort}>${ready.udpPort}`), "UDP flow, sender");
    assert.equal(udpClient.packetsOut, udpDatagrams);
    assert.equal(udpClient.bytesOut, udpDatagrams * (udpSize + 8 + (options.host.includes(":") ? 40 : 20)), "UDP IP bytes = payload + UDP + IP headers");
    if (options.sides === "both") {
      const udpServer = findRow(snapshot.rows, "udp", ready.udpPort, sent.udpLocalPort);
      assertCounted(udpServer.payloadIn, received.udpBytes, wire.get(`${sent.udpLocalPort}>${ready.udpPort}`), "UDP flow, receiver");
      assert.equal(udpServer.process?.pid, ready.pid);
    }
    assert.equal(snapshot.lost, 0);
  } finally {
    tcpdump?.process.kill();
    top?.kill();
    client?.kill();
    server?.kill();
  }
}

test("top --json counts 3 TCP connections (1, 2, 3 MiB) and a UDP flow on loopback, with their processes", { timeout: 90_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for cgroup skb programs")) return;
  await knownTransfers({ host: "127.0.0.1", topArgs: [], sides: "both", reference: { interface: "lo" } });
});

test("top --json counts the same transfers between two network namespaces, from the root cgroup and from tcx on one veth (-i)", { timeout: 120_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for namespaces and cgroup skb programs")) return;
  const bed = Testbed.create("nbm1", { disableIpv6: true });
  t.after(() => bed.destroy());
  // Default mode: the hooks on the root cgroup see both namespaces' sockets.
  await knownTransfers({
    host: bed.b.address,
    serverPrefix: ["ip", "netns", "exec", bed.b.namespace],
    clientPrefix: ["ip", "netns", "exec", bed.a.namespace],
    topArgs: [],
    sides: "both",
    topFirst: true,
    reference: { interface: bed.a.interface, prefix: ["ip", "netns", "exec", bed.a.namespace] },
  });
  // -i: tcx on A's veth, top running in A's network namespace.
  await knownTransfers({
    host: bed.b.address,
    serverPrefix: ["ip", "netns", "exec", bed.b.namespace],
    clientPrefix: ["ip", "netns", "exec", bed.a.namespace],
    topArgs: ["-i", bed.a.interface],
    topPrefix: ["nsenter", `--net=/run/netns/${bed.a.namespace}`],
    sides: "client",
    topFirst: true,
    reference: { interface: bed.a.interface, prefix: ["ip", "netns", "exec", bed.a.namespace] },
  });
});

test("top --by port groups by local port and a filter expression narrows what is counted", { timeout: 60_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for cgroup skb programs")) return;
  const server = ScriptProcess.node(serverScript("127.0.0.1", 1, 10));
  let top: ScriptProcess | undefined;
  let client: ScriptProcess | undefined;
  try {
    const ready = await server.nextJson<ServerReady>();
    // Only UDP to or from the server's UDP port: the TCP connection must not be counted.
    top = startTop(["--by", "port", "--interval", "5", `udp port ${ready.udpPort} or tcp port ${ready.tcpPort} and udp`]);
    await waitForStderr(top, "netbpf: watching");
    client = ScriptProcess.node(clientScript("127.0.0.1", ready.tcpPort, ready.udpPort, [100_000], 10, 500));
    await client.nextJson<ClientReport>();
    await server.nextJson<ServerReport>();
    const snapshot = await lastSnapshot(top);
    assert.ok(snapshot.rows.every((row) => row.protocol === "udp"), `only UDP rows: ${JSON.stringify(snapshot.rows.map((r) => r.key))}`);
    const serverPort = snapshot.rows.find((row) => row.localPort === ready.udpPort);
    assert.ok(serverPort, "the server's UDP port is a row");
    assert.equal(serverPort.payloadIn, 10 * 500);
    assert.equal(serverPort.packetsIn, 10);
    assert.equal(serverPort.remotePort, undefined, "by port: no remote port");
  } finally {
    top?.kill();
    client?.kill();
    server.kill();
  }
});

test("top rejects bad input with one line and exit status 2", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root")) return;
  const cases: [string[], RegExp][] = [
    [["--port", "0"], /--port needs a port number 1-65535, got "0"/],
    [["--port", "http"], /--port needs a port number/],
    [["-i", "nbm1-missing"], /no network interface named nbm1-missing/],
    [["--interval", "-1"], /--interval needs a positive number of seconds/],
    [["--by", "color"], /argument 'color' is invalid/],
    [["tcp", "and"], /compile filter: unexpected end of expression/],
    [["--entries", "3"], /--entries needs an integer 16-16777216/],
  ];
  for (const [args, message] of cases) {
    const result = runCli(["top", "--json", ...args], { timeout: 20_000 });
    assert.equal(result.status, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message);
    assert.match(result.stderr.split("\n")[0]!, /^(netbpf: |error: )/);
    assert.equal(result.stdout, "");
  }
  // Without privileges (an unprivileged user): one line naming what to grant, status 2.
  const unprivileged = runCliAsNobody(["top", "--json", "--duration", "1"]);
  assert.equal(unprivileged.status, 2, unprivileged.stderr);
  assert.match(unprivileged.stderr, /^netbpf: .*EPERM \(the process lacks CAP_BPF.*run as root, or grant them\)/);
  assert.equal(unprivileged.stderr.trim().split("\n").length, 1);
});
