/**
 * The recorder on real traffic, run as a user runs it (`netbpf audit record`
 * as a child process): an HTTP download with curl from a server run as
 * another user, a TCP connection from one test namespace into a listening
 * process in another, a UDP exchange, a DNS lookup at a resolver the test
 * starts — each must appear in `netbpf audit query` with the right
 * processes, users, ports, bytes (within 2%) and names. Then kill -9 of a
 * recorder: the database still opens and verifies.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { AuditLog } from "../../src/audit/audit-log.js";
import type { AuditRecord } from "../../src/audit/audit-record.js";
import { cliPath, runCli } from "../support/cli.js";
import { isRoot, skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";
import { exited, serverScript, clientScript, startNode, waitForOutput, replyBytes } from "../support/tcp-transfers.js";
import { Testbed } from "../support/testbed.js";
import { randomServicePort } from "../support/service-port.js";
import { spawnSync } from "node:child_process";

function hasTool(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
}

function within(actual: number | null, expected: number, what: string): void {
  assert.ok(actual !== null, `${what}: no byte count`);
  assert.ok(Math.abs(actual - expected) <= expected * 0.02, `${what}: ${actual} bytes, expected ${expected} (±2%)`);
}

function query(db: string, ...args: string[]): AuditRecord[] {
  const result = runCli(["audit", "query", "--db", db, "--json", ...args]);
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim() === "" ? [] : result.stdout.trim().split("\n").map((line) => JSON.parse(line) as AuditRecord);
}

function startRecorder(db: string): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [cliPath, "audit", "record", "--db", db, "--interval", "500ms"]);
}

/** A DNS responder over UDP and TCP answering A questions for `names` with `address` (NXDOMAIN otherwise). */
function dnsServerScript(host: string, names: string[], address: string): string {
  return `
import dgram from "node:dgram";
import net from "node:net";
const socket = dgram.createSocket("udp4");
function answer(query) {
  let offset = 12; const labels = [];
  while (query[offset] !== 0) { labels.push(query.subarray(offset + 1, offset + 1 + query[offset]).toString()); offset += query[offset] + 1; }
  const question = query.subarray(12, offset + 5);
  const found = ${JSON.stringify(names)}.includes(labels.join(".").toLowerCase()) && query.readUInt16BE(offset + 1) === 1;
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  header.writeUInt16BE(found ? 0x8180 : 0x8183, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(found ? 1 : 0, 6);
  const answer = found ? Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, ${address.split(".").join(", ")}]) : Buffer.alloc(0);
  return Buffer.concat([header, question, answer]);
}
socket.on("message", (query, peer) => socket.send(answer(query), peer.port, peer.address));
// Over TCP: a 2-byte length before each message.
const tcp = net.createServer((connection) => {
  let buffered = Buffer.alloc(0);
  connection.on("data", (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
      const reply = answer(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
      buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      const length = Buffer.alloc(2);
      length.writeUInt16BE(reply.length);
      connection.write(Buffer.concat([length, reply]));
    }
  });
});
tcp.listen(53, ${JSON.stringify(host)}, () => socket.bind(53, ${JSON.stringify(host)}, () => console.log("listening")));
`;
}

test("curl, a namespace connection, UDP and DNS appear in audit query with processes, users, bytes and names", { timeout: 120_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for tracepoints and cgroup programs")) return;
  if (skipUnlessTool(t, hasTool("curl") && hasTool("setpriv"), "needs curl and setpriv")) return;
  const directory = mkdtempSync(join(tmpdir(), "nbau-rec-"));
  chmodSync(directory, 0o755);
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  const db = join(directory, "audit.db");
  const bed = Testbed.create("nbau", { disableIpv6: true });
  t.after(() => bed.destroy());
  const children: ChildProcessWithoutNullStreams[] = [];
  t.after(() => {
    for (const child of children) if (child.exitCode === null && child.pid !== undefined) child.kill("SIGKILL");
  });

  const recorder = startRecorder(db);
  children.push(recorder);
  const recorderExit = exited(recorder, 110_000);
  await waitForOutput(recorder, "stderr", "recording to");

  // 1. curl → a local HTTP server run as user 65534 (nobody).
  const httpPort = 20000 + Math.floor(Math.random() * 5000);
  const body = 200_000;
  // A node HTTP server as user nobody (setpriv); its binary must be readable by that user.
  const httpScript = `import http from "node:http"; http.createServer((request, response) => { response.setHeader("content-type", "application/octet-stream"); response.end(Buffer.alloc(${body}, 0x41)); }).listen(${httpPort}, "127.0.0.1", () => console.log("Serving HTTP"));`;
  const http = bed.start(bed.a, ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, "--input-type=module", "-e", httpScript]);
  children.push(http);
  await waitForOutput(http, "stdout", "Serving HTTP");
  const curl = bed.exec(bed.a, ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download} %{size_header} %{size_request} %{local_port}", `http://127.0.0.1:${httpPort}/file.bin`]);
  const [downloaded, headerBytes, requestBytes, curlPort] = curl.stdout.trim().split(" ").map(Number) as [number, number, number, number];
  assert.equal(downloaded, body);

  // 2. A client in namespace a connects to a server listening in namespace b (after asking b's resolver for its name).
  // The recorder hears DNS in every namespace, and every testbed has the same addresses: names of this run's own.
  const zone = `${randomBytes(3).toString("hex")}.nbau.test`;
  const [webName, tcpName] = [`web.${zone}`, `tcp.${zone}`];
  const tcpPort = 25000 + Math.floor(Math.random() * 5000);
  const server = startNode(serverScript(bed.b.address, tcpPort, 1), ["ip", "netns", "exec", bed.b.namespace]);
  children.push(server);
  const serverDone = exited(server);
  await waitForOutput(server, "stdout", "listening");
  const resolver = startNode(dnsServerScript(bed.b.address, [webName, tcpName], bed.b.address), ["ip", "netns", "exec", bed.b.namespace]);
  children.push(resolver);
  await waitForOutput(resolver, "stdout", "listening");
  // The resolver asked over TCP first (as resolvers do after a truncated answer), for another name of the same address;
  // the UDP answer after it names the connection below.
  const tcpLookup = bed.node(bed.a, `import net from "node:net";
    const name = Buffer.concat([...${JSON.stringify(tcpName.split("."))}.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)])), Buffer.from([0, 0, 1, 0, 1])]);
    const query = Buffer.concat([Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), name]);
    const socket = net.connect(53, "${bed.b.address}", () => socket.write(Buffer.concat([Buffer.from([0, query.length]), query])));
    let reply = Buffer.alloc(0);
    socket.on("data", (chunk) => { reply = Buffer.concat([reply, chunk]); if (reply.length >= 2 + reply.readUInt16BE(0)) { console.log(reply.subarray(reply.length - 4).join(".")); socket.end(); } });`);
  assert.equal(tcpLookup.trim(), bed.b.address, "the TCP resolver answered");
  const lookup = bed.node(bed.a, `import dns from "node:dns"; const r = new dns.promises.Resolver(); r.setServers(["${bed.b.address}"]); console.log((await r.resolve4("${webName}")).join(","));`);
  assert.equal(lookup.trim(), bed.b.address);
  const sent = 300_000;
  const client = startNode(clientScript(bed.b.address, tcpPort, sent), ["ip", "netns", "exec", bed.a.namespace]);
  children.push(client);
  const clientResult = await exited(client);
  const clientLine = JSON.parse(clientResult.stdout.trim()) as { localPort: number; received: number };
  await serverDone;

  // 3. UDP: 20 datagrams of 700 bytes to an echo server, each answered.
  const udpPort = 10000 + Math.floor(Math.random() * 5000); // a server port outside the ephemeral range
  const echo = startNode(`import dgram from "node:dgram"; const s = dgram.createSocket("udp4"); s.on("message", (m, p) => s.send(m, p.port, p.address)); s.bind(${udpPort}, "${bed.b.address}", () => console.log("listening"));`, ["ip", "netns", "exec", bed.b.namespace]);
  children.push(echo);
  await waitForOutput(echo, "stdout", "listening");
  // Times taken around the first and last exchange, so that each packet's time lies between two of them however late this client runs.
  const udpClient = startNode(`import dgram from "node:dgram"; const s = dgram.createSocket("udp4"); s.bind(0, () => { let n = 0; let firstAnswer = 0; let lastSent = 0; const first = Date.now();
    const next = () => { lastSent = Date.now(); s.send(Buffer.alloc(700, 0x55), ${udpPort}, "${bed.b.address}"); };
    s.on("message", () => { if (++n === 1) firstAnswer = Date.now(); if (n === 20) { console.log(JSON.stringify({ port: s.address().port, first, firstAnswer, lastSent, last: Date.now() })); s.close(); } else next(); }); next(); });`, ["ip", "netns", "exec", bed.a.namespace]);
  children.push(udpClient);
  const udpResult = await exited(udpClient);
  const udpTimes = JSON.parse(udpResult.stdout.trim()) as { port: number; first: number; firstAnswer: number; lastSent: number; last: number };
  const udpClientPort = udpTimes.port;

  // Let a batch or two pass, then stop the recorder as a user would.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  recorder.kill("SIGINT");
  const finished = await recorderExit;
  assert.equal(finished.code, 0, finished.stderr);
  for (const child of [http, resolver, echo]) child.kill("SIGKILL");

  // 1. Both ends of the HTTP download.
  const httpRecords = query(db, "--port", String(httpPort), "--kind", "connection");
  const curlSide = httpRecords.find((record) => record.flow!.localPort === curlPort);
  const serverSide = httpRecords.find((record) => record.flow!.localPort === httpPort);
  assert.ok(curlSide && serverSide, JSON.stringify(httpRecords));
  assert.equal(curlSide.process!.command, "curl");
  assert.equal(curlSide.process!.uid, 0);
  assert.equal(curlSide.flow!.direction, "outbound");
  within(curlSide.bytesReceived, downloaded + headerBytes, "curl received");
  within(curlSide.bytesSent, requestBytes, "curl sent");
  assert.equal(serverSide.process!.command, "node");
  assert.equal(serverSide.process!.uid, 65534);
  assert.equal(serverSide.process!.pid, http.pid);
  assert.equal(serverSide.flow!.direction, "inbound");
  within(serverSide.bytesSent, downloaded + headerBytes, "server sent");
  assert.equal(serverSide.process!.executable, process.execPath);
  assert.ok(curlSide.process!.parentPid !== null && curlSide.process!.cgroupId !== null, JSON.stringify(curlSide.process));
  assert.deepEqual(query(db, "--process", "curl", "--port", String(httpPort)).map((record) => record.sequence), [curlSide.sequence]);
  assert.ok(query(db, "--kind", "listen", "--port", String(httpPort)).some((record) => record.process!.pid === http.pid));

  // 2. Namespace connection, both sides, named by the DNS answer.
  const tcpRecords = query(db, "--kind", "connection", `tcp port ${tcpPort}`);
  const outbound = tcpRecords.find((record) => record.flow!.direction === "outbound");
  const inbound = tcpRecords.find((record) => record.flow!.direction === "inbound");
  assert.ok(outbound && inbound, JSON.stringify(tcpRecords));
  assert.equal(outbound.process!.pid, client.pid);
  assert.equal(outbound.flow!.localPort, clientLine.localPort);
  assert.equal(outbound.flow!.remoteName, webName);
  within(outbound.bytesSent, sent, "client sent");
  within(outbound.bytesReceived, replyBytes, "client received");
  assert.equal(inbound.process!.pid, server.pid);
  within(inbound.bytesReceived, sent, "server received");
  within(inbound.bytesSent, replyBytes, "server sent");
  assert.equal(inbound.closeReason, "fin");
  assert.ok(query(db, "--remote", webName, "--kind", "connection").some((record) => record.sequence === outbound.sequence));
  const dnsRecords = query(db, "--kind", "dns", "--remote", webName);
  assert.equal(dnsRecords.length, 1, JSON.stringify(dnsRecords));
  assert.deepEqual(dnsRecords[0]!.dns!.answers, [bed.b.address]);
  assert.equal(dnsRecords[0]!.dns!.responseCode, "NOERROR");
  const tcpDns = query(db, "--kind", "dns", "--remote", tcpName);
  assert.equal(tcpDns.length, 1, `DNS over TCP: ${JSON.stringify(tcpDns)}`);
  assert.deepEqual(tcpDns[0]!.dns!.answers, [bed.b.address]);
  assert.equal(tcpDns[0]!.dns!.serverPort, 53);

  // 3. UDP, both sides, summed over intervals.
  const udpRecords = query(db, "--kind", "udp", `udp port ${udpPort}`);
  const sum = (records: AuditRecord[], field: "bytesSent" | "bytesReceived" | "packetsSent" | "packetsReceived") => records.reduce((total, record) => total + (record[field] ?? 0), 0);
  const clientFlows = udpRecords.filter((record) => record.flow!.localPort === udpClientPort);
  const serverFlows = udpRecords.filter((record) => record.flow!.localPort === udpPort);
  assert.ok(clientFlows.length > 0 && serverFlows.length > 0, JSON.stringify(udpRecords));
  assert.equal(sum(clientFlows, "packetsSent"), 20);
  assert.equal(sum(clientFlows, "packetsReceived"), 20);
  within(sum(clientFlows, "bytesSent"), 20 * 700, "UDP client sent");
  within(sum(serverFlows, "bytesReceived"), 20 * 700, "UDP server received");
  assert.equal(clientFlows[0]!.process!.pid, udpClient.pid);
  assert.equal(serverFlows[0]!.process!.pid, echo.pid);
  assert.equal(clientFlows[0]!.flow!.direction, "outbound");
  // The flow's first and last packet as the kernel saw them (not the bounds of the recorder's 500 ms interval):
  // the first went out after `first` and before its answer came; the last (the 20th answer) came after the
  // 20th datagram went out and before the client read it. 20 ms for the conversion to wall-clock time.
  const flowStart = Math.min(...clientFlows.map((record) => new Date(record.start).getTime()));
  const flowEnd = Math.max(...clientFlows.map((record) => new Date(record.end).getTime()));
  assert.ok(flowStart >= udpTimes.first - 20 && flowStart <= udpTimes.firstAnswer + 20, `UDP flow start ${flowStart}: first datagram sent after ${udpTimes.first}, answered before ${udpTimes.firstAnswer}`);
  assert.ok(flowEnd >= udpTimes.lastSent - 20 && flowEnd <= udpTimes.last + 20, `UDP flow end ${flowEnd}: last datagram sent after ${udpTimes.lastSent}, its answer read at ${udpTimes.last}`);

  const verify = runCli(["audit", "verify", "--db", db]);
  assert.equal(verify.status, 0, verify.stderr);
});

test("kill -9 of the recorder: the database opens, verifies, and holds what earlier batches stored", { timeout: 60_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for tracepoints and cgroup programs")) return;
  const directory = mkdtempSync(join(tmpdir(), "nbau-kill-"));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  const db = join(directory, "audit.db");
  const recorder = startRecorder(db);
  t.after(() => {
    if (recorder.exitCode === null) recorder.kill("SIGKILL");
  });
  const recorderExit = exited(recorder, 50_000);
  await waitForOutput(recorder, "stderr", "recording to");
  const port = randomServicePort();
  const server = startNode(serverScript("127.0.0.1", port, 5), []);
  const serverDone = exited(server);
  await waitForOutput(server, "stdout", "listening");
  const pids = new Set([server.pid]);
  for (let index = 0; index < 5; index++) {
    const client = startNode(clientScript("127.0.0.1", port, 1000));
    pids.add(client.pid);
    await exited(client);
  }
  await serverDone;
  // Only these processes' connections: other suites' connections can share the port from another namespace.
  const ours = () => query(db, "--kind", "connection", "--port", String(port)).filter((record) => pids.has(record.process?.pid ?? undefined));
  // Killed once the batches holding all 10 records are committed (a reader sees only committed ones), however long that takes on a busy machine.
  const deadline = Date.now() + 30_000;
  while (ours().length < 10 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  recorder.kill("SIGKILL");
  await recorderExit;
  using log = AuditLog.open(db);
  assert.equal(log.verify().ok, true);
  assert.equal(log.database.pragma("integrity_check", { simple: true }), "ok");
  assert.equal(ours().length, 10, "both ends of the 5 connections, stored in batches before the kill");
});
