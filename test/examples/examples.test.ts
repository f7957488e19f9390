import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { programsLeftLoaded } from "../support/loaded-programs.js";
import { AttachType } from "../../src/sys/bpf-constants.js";
import { programQuery } from "../../src/sys/bpf.js";
import { interfaceIndex } from "../../src/sys/socket.js";
import { skipUnlessRoot } from "../support/kernel.js";
import { randomServicePort } from "../support/service-port.js";

const examples = fileURLToPath(new URL("../../examples/", import.meta.url));

function start(script: string, args: string[]) {
  const child = spawn(process.execPath, [examples + script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const exited = once(child, "exit");
  return {
    child,
    output: () => ({ stdout, stderr }),
    async waitFor(pattern: RegExp, stream: "stdout" | "stderr" = "stdout", timeout = 60_000) {
      const deadline = Date.now() + timeout;
      while (!pattern.test(stream === "stdout" ? stdout : stderr)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${script} did not print ${pattern}: ${stdout} ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    exited,
  };
}

/** One TCP exchange over loopback: connect, send `size` bytes, read the echo, close. */
async function exchange(port: number, size: number): Promise<void> {
  const server = net.createServer((c) => c.pipe(c)).listen(port, "127.0.0.1");
  await once(server, "listening");
  try {
    const client = net.connect(port, "127.0.0.1");
    await once(client, "connect");
    client.write(Buffer.alloc(size, 1));
    let received = 0;
    for await (const chunk of client) {
      received += (chunk as Buffer).length;
      if (received >= size) break;
    }
    client.end();
    client.destroy();
  } finally {
    server.close();
  }
}

test("port-monitor tells someone who makes no traffic what to do", async (t) => {
  if (skipUnlessRoot(t, "to attach the example's programs")) return;
  const port = randomServicePort();
  const monitor = start("port-monitor.js", [String(port), "--seconds", "6"]);
  try {
    await monitor.waitFor(/counting TCP port/);
    await monitor.exited;
  } finally {
    monitor.child.kill();
  }
  const { stdout, stderr } = monitor.output();
  assert.equal(monitor.child.exitCode, 0, stderr);
  // At start, and again after 5 quiet seconds, it says how to make traffic on the port.
  assert.match(stdout, new RegExp(`^make some traffic in another terminal, e\\.g\\. \`curl -s http://127\\.0\\.0\\.1:${port}/\``, "m"));
  assert.match(stdout, new RegExp(`^no TCP port ${port} packets on lo in 5 s: make some traffic`, "m"));
});

test("port-monitor counts a TCP exchange on lo in both directions and detaches on exit", async (t) => {
  if (skipUnlessRoot(t, "to attach the example's programs")) return;
  const port = randomServicePort();
  const monitor = start("port-monitor.js", [String(port), "--seconds", "3"]);
  try {
    await monitor.waitFor(/counting TCP port/);
    await exchange(port, 5000);
    await monitor.exited;
  } finally {
    monitor.child.kill();
  }
  const { stdout, stderr } = monitor.output();
  assert.equal(monitor.child.exitCode, 0, stderr);
  const last = stdout.trim().split("\n").pop()!;
  const match = /total in (\d+)\/(\d+) B, out (\d+)\/(\d+) B/.exec(last);
  assert.ok(match, `unexpected output: ${stdout}`);
  const [inPackets, inBytes, outPackets, outBytes] = match.slice(1).map(Number) as [number, number, number, number];
  // On lo every packet leaves through egress and comes back through ingress.
  assert.equal(inPackets, outPackets);
  assert.equal(inBytes, outBytes);
  // The handshake (3), data each way and the close give at least 7 packets; 10,000 payload bytes crossed.
  assert.ok(inPackets >= 7, `only ${inPackets} packets counted`);
  assert.ok(inBytes >= 10000, `only ${inBytes} bytes counted`);
  assert.equal((await programsLeftLoaded((p) => p.name.startsWith("port_ingress") || p.name.startsWith("port_egress"))).length, 0, "programs left loaded");
  // Asked of this namespace's lo only (other tests attach to the lo of their own namespaces).
  const lo = interfaceIndex("lo");
  assert.deepEqual([AttachType.TcxIngress, AttachType.TcxEgress].flatMap((type) => programQuery(lo, type).linkIds), [], "tcx links left on lo");
});

test("port-monitor piped into a reader that stops (| head) ends quietly and detaches", async (t) => {
  if (skipUnlessRoot(t, "to attach the example's programs")) return;
  const monitor = start("port-monitor.js", [String(randomServicePort()), "--seconds", "30"]);
  try {
    await monitor.waitFor(/counting TCP port/);
    monitor.child.stdout.destroy(); // the next line it writes fails with EPIPE
    await monitor.exited;
  } finally {
    monitor.child.kill();
  }
  const { stderr } = monitor.output();
  assert.equal(monitor.child.exitCode, 0, stderr);
  assert.doesNotMatch(stderr, /EPIPE|\n\s+at /);
  assert.equal((await programsLeftLoaded((p) => p.name.startsWith("port_ingress") || p.name.startsWith("port_egress"))).length, 0, "programs left loaded");
});

test("port-monitor rejects a bad argument without a stack trace", async () => {
  const monitor = start("port-monitor.js", ["--bogus"]);
  await monitor.exited;
  assert.equal(monitor.child.exitCode, 1);
  assert.match(monitor.output().stderr, /unknown argument "--bogus"/);
  assert.doesNotMatch(monitor.output().stderr, /\n\s+at /);
});

test("tcp-states reports the life of a loopback connection in order", async (t) => {
  if (skipUnlessRoot(t, "to attach the example's programs")) return;
  const port = randomServicePort();
  const follower = start("tcp-states.js", ["--port", String(port), "--json", "--count", "5"]);
  try {
    // The programs are attached when it says so.
    await follower.waitFor(/following TCP state changes/, "stderr", 20_000);
    await exchange(port, 100);
    await Promise.race([follower.exited, new Promise((_, reject) => setTimeout(() => reject(new Error("tcp-states did not finish")), 60_000))]);
  } finally {
    follower.child.kill();
  }
  const { stdout, stderr } = follower.output();
  assert.equal(follower.child.exitCode, 0, stderr);
  const events = stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(events.length, 5);
  const transitions = events.map((e) => `${e.oldState}>${e.newState}`);
  assert.deepEqual(transitions.slice(0, 2), ["CLOSE>LISTEN", "CLOSE>SYN_SENT"]);
  assert.ok(transitions.includes("SYN_SENT>ESTABLISHED"));
  assert.ok(transitions.includes("SYN_RECV>ESTABLISHED"));
  for (const e of events) assert.equal(e.family, "ipv4");
  const timestamps = events.map((e) => BigInt(e.timestamp));
  for (let i = 1; i < timestamps.length; i++) assert.ok(timestamps[i]! >= timestamps[i - 1]!, "events out of order");
});
