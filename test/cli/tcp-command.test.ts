import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { test, type TestContext } from "node:test";
import { tcpWatchOptions } from "../../src/cli/tcp-command.js";
import { cliPath, runCli, runCliAsNobody } from "../support/cli.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { Testbed } from "../support/testbed.js";
import { randomServicePort } from "../support/service-port.js";
import { clientScript, exited, replyBytes, serverScript, startNode, waitForOutput, type Finished } from "../support/tcp-transfers.js";

const mebibyte = 1 << 20;
const sizes = [1 * mebibyte, 2 * mebibyte, 3 * mebibyte];

function tracer(args: string[]): { child: ChildProcessWithoutNullStreams; done: Promise<Finished>; ready: Promise<void>; output: () => string } {
  const child = spawn(process.execPath, [cliPath, "tcp", ...args]);
  const ready = waitForOutput(child, "stderr", "netbpf: tracing");
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return { child, ready, done: exited(child), output: () => output };
}

function jsonLines(text: string): Record<string, any>[] {
  return text.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line) as Record<string, any>);
}

/**
 * The events of one connection: a kernel socket address is reused by later
 * connections, so events are split at each connect (CLOSE -> SYN_SENT).
 */
function connectionOf(events: Record<string, any>[], localPort: number): Record<string, any>[] {
  const current = new Map<string, Record<string, any>[]>();
  const connections: Record<string, any>[][] = [];
  for (const event of events) {
    if (event.type === "state" && event.oldState === "CLOSE" && event.state === "SYN_SENT") {
      const fresh: Record<string, any>[] = [];
      connections.push(fresh);
      current.set(event.socket, fresh);
    }
    current.get(event.socket)?.push(event);
  }
  return connections.find((connection) => connection.some((event) => event.localPort === localPort)) ?? [];
}

function assertWithin(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= expected * 0.02, `${what}: ${actual} is not within 2% of ${expected}`);
}

/**
 * Three connections carrying 1, 2 and 3 MiB from three client processes to
 * one server process, watched by `tcp --json -L port` (the server's side,
 * one summary per connection) and `tcp --json --events -D port` (every
 * event of the clients' side).
 */
async function knownTransfers(t: TestContext, options: { serverHost: string; clientHost: string; port: number; serverPrefix?: string[]; clientPrefix?: string[]; family: "ipv4" | "ipv6" }): Promise<void> {
  const serverSide = tracer(["--json", "-L", String(options.port)]);
  const clientSide = tracer(["--json", "--events", "-D", String(options.port)]);
  const children: ChildProcessWithoutNullStreams[] = [serverSide.child, clientSide.child];
  t.after(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  await Promise.all([serverSide.ready, clientSide.ready]);

  const server = startNode(serverScript(options.serverHost, options.port, sizes.length), options.serverPrefix);
  children.push(server);
  const serverDone = exited(server);
  await waitForOutput(server, "stdout", "listening");
  const clients: { pid: number; localPort: number; received: number; milliseconds: number; bytes: number }[] = [];
  for (const bytes of sizes) {
    const client = startNode(clientScript(options.clientHost, options.port, bytes), options.clientPrefix);
    children.push(client);
    const result = await exited(client);
    assert.equal(result.code, 0, result.stderr);
    clients.push({ pid: client.pid!, bytes, ...(JSON.parse(result.stdout) as { localPort: number; received: number; milliseconds: number }) });
  }
  const serverResult = await serverDone;
  assert.equal(serverResult.code, 0, serverResult.stderr);

  // The events are in the ring by now; give the readers a moment, then stop them.
  const deadline = Date.now() + 10_000;
  const complete = () => jsonLines(serverSide.output()).length >= sizes.length && jsonLines(clientSide.output()).filter((event) => event.state === "CLOSE").length >= sizes.length;
  while (!complete() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  serverSide.child.kill("SIGINT");
  clientSide.child.kill("SIGINT");
  const [serverTrace, clientTrace] = await Promise.all([serverSide.done, clientSide.done]);
  assert.equal(serverTrace.code, 0, serverTrace.stderr);
  assert.equal(clientTrace.code, 0, clientTrace.stderr);
  const serverEvents = jsonLines(serverTrace.stdout);
  const clientEvents = jsonLines(clientTrace.stdout);

  // Server side: one close summary per connection, with the server's pid (the acceptor).
  assert.equal(serverEvents.length, sizes.length, serverTrace.stdout);
  for (const client of clients) {
    const summary = serverEvents.find((event) => event.remotePort === client.localPort);
    assert.ok(summary, `no summary for the connection from port ${client.localPort}: ${serverTrace.stdout}`);
    assert.equal(summary.type, "close");
    assert.equal(summary.state, "CLOSE");
    assert.equal(summary.pid, server.pid, "the accepting process");
    assert.equal(summary.command, "node");
    assert.equal(summary.role, "passive");
    assert.equal(summary.family, options.family);
    assert.equal(summary.localAddress, options.serverHost);
    assert.equal(summary.localPort, options.port);
    assertWithin(summary.bytesReceived, client.bytes, "server bytes received");
    assertWithin(summary.bytesSent, replyBytes, "server bytes sent");
    assert.ok(summary.durationMilliseconds > 0 && summary.durationMilliseconds <= client.milliseconds + 1000, `duration ${summary.durationMilliseconds} ms (client saw ${client.milliseconds} ms)`);
    assert.ok(summary.smoothedRttMilliseconds > 0);
  }

  // Client side: every state change of each connection, with the client's pid.
  for (const client of clients) {
    const events = connectionOf(clientEvents, client.localPort);
    assert.ok(events.length > 0, `no events for the client on port ${client.localPort}: ${clientTrace.stdout}`);
    const transitions = events.filter((event) => event.type === "state").map((event) => `${event.oldState}>${event.state}`);
    assert.deepEqual(transitions.slice(0, 3), ["CLOSE>SYN_SENT", "SYN_SENT>ESTABLISHED", "ESTABLISHED>FIN_WAIT1"], transitions.join(" "));
    assert.equal(transitions.at(-1)?.endsWith(">CLOSE"), true, transitions.join(" "));
    for (const event of events) {
      assert.equal(event.pid, client.pid, "the connecting process");
      assert.equal(event.command, "node");
      assert.equal(event.role, "active");
      assert.equal(event.remotePort, options.port);
    }
    const last = events.at(-1)!;
    assertWithin(last.bytesSent, client.bytes, "client bytes sent");
    assertWithin(last.bytesReceived, replyBytes, "client bytes received");
    assert.equal(client.received, replyBytes);
    assert.ok(last.durationMilliseconds > 0 && last.durationMilliseconds <= client.milliseconds + 50, `duration ${last.durationMilliseconds} ms (client saw ${client.milliseconds} ms)`);
    assert.ok(last.connectLatencyMilliseconds >= 0 && last.connectLatencyMilliseconds < last.durationMilliseconds);
  }
}

const available = isRoot();

test("tcp --json on loopback (IPv6): 1, 2 and 3 MiB connections with the connecting and the accepting pids, bytes, states and durations", async (t) => {
  if (skipUnlessKernel(t, available, "needs root")) return;
  await knownTransfers(t, { serverHost: "::1", clientHost: "::1", port: randomServicePort(), family: "ipv6" });
});

test("tcp --json on a namespace testbed (IPv4): the same transfers between two network namespaces", async (t) => {
  if (skipUnlessKernel(t, available, "needs root")) return;
  const bed = Testbed.create("nbm2", { disableIpv6: true });
  t.after(() => bed.destroy());
  await knownTransfers(t, {
    serverHost: bed.b.address,
    clientHost: bed.b.address,
    port: randomServicePort(),
    serverPrefix: ["ip", "netns", "exec", bed.b.namespace],
    clientPrefix: ["ip", "netns", "exec", bed.a.namespace],
    family: "ipv4",
  });
});

test("tcp: bad input is one line and exit 2", (t) => {
  if (skipUnlessKernel(t, available, "needs root")) return;
  for (const args of [["-L", "0"], ["-D", "70000"], ["-L", "http"], ["--state", "OPEN"], ["-p", "x"], ["-c", "0"], ["--duration", "-1"], ["--no-such-option"]]) {
    const result = runCli(["tcp", ...args]);
    assert.equal(result.status, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, /^(netbpf: tcp|netbpf: watch tcp|error: )/, args.join(" "));
    assert.equal(result.stdout, "", args.join(" "));
  }
});

test("tcp without privilege says so and exits 2", (t) => {
  if (skipUnlessKernel(t, available, "needs root")) return;
  const setpriv = runCliAsNobody(["tcp", "--duration", "1"], { setpriv: ["--inh-caps=-all"] });
  assert.equal(setpriv.status, 2, setpriv.stderr);
  assert.equal(setpriv.stderr.trim().split("\n").length, 1, setpriv.stderr);
  assert.match(setpriv.stderr, /^netbpf: .*(EPERM|EACCES).*run as root/);
});

test("tcp --duration stops by itself and prints the table header", (t) => {
  if (skipUnlessKernel(t, available, "needs root")) return;
  const result = runCli(["tcp", "--duration", "0.5", "-L", "1"]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /^PID\s+COMM\s+LADDR\s+LPORT\s+RADDR\s+RPORT\s+TX_KB\s+RX_KB\s+MS\s+RTT_MS\s+RETR\n$/);
  assert.match(result.stderr, /netbpf: tracing TCP connections .*\nnetbpf: 0 connections shown\n$/);
});

test("tcp options map to watchTcp options: --state implies --events; ports and pid parsed", () => {
  assert.deepEqual(tcpWatchOptions({}), { types: ["close"] });
  assert.deepEqual(tcpWatchOptions({ events: true, pid: "42", localPort: ["80", "443"], remotePort: ["5432"] }), {
    types: ["state", "accept", "retransmit", "reset"], pid: 42, localPorts: [80, 443], remotePorts: [5432],
  });
  assert.deepEqual(tcpWatchOptions({ state: ["established,TIME_WAIT", "tcp_close"] }), {
    types: ["state", "accept", "retransmit", "reset"], states: ["established", "TIME_WAIT", "tcp_close"],
  });
  assert.throws(() => tcpWatchOptions({ localPort: ["0x50"] }), /-L needs a port number/);
});
