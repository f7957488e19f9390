import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { setTimeout as delay } from "node:timers/promises";
import { test } from "node:test";
import { AlertEngine } from "../../src/audit/alert-engine.js";
import { formatSyslogMessage, parseSyslogTarget, SyslogOutput, WebhookOutput } from "../../src/audit/alert-outputs.js";
import { AlertRules } from "../../src/audit/alert-rules.js";
import type { AuditRecord } from "../../src/audit/audit-record.js";
import { DeliveryQueue, defaultRetryPolicy, retryDelay } from "../../src/audit/delivery-queue.js";
import { UsageError } from "../../src/sys/errors.js";
import { UnixDatagramSocket } from "../../src/sys/unix-datagram-socket.js";
import { record } from "./record-builders.js";

const rules = AlertRules.parse(`
rules:
  - { name: ssh-out, severity: high, message: "{process.command} opened SSH to {flow.remoteAddress}", filter: tcp dst port 22 }
`);

async function alertsFor(records: AuditRecord[]): Promise<AuditRecord[]> {
  const engine = new AlertEngine({ rules });
  const alerts: AuditRecord[] = [];
  for (const item of records) alerts.push(...(await engine.evaluate(item)));
  return alerts;
}

/** RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA [SP MSG] */
const rfc5424 = /^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z) ([\x21-\x7e]{1,255}) ([\x21-\x7e]{1,48}) ([\x21-\x7e]{1,128}) ([\x21-\x7e]{1,32}) (-|(?:\[[^ =\]"]+(?: [^ =\]"]+="(?:[^"\\\]]|\\["\\\]])*")*\])+) (.*)$/s;

test("syslog messages follow RFC 5424 and escape structured data", async () => {
  const [alert] = await alertsFor([record({ sequence: 5, process: { command: 'we"ird]' }, flow: { remotePort: 22, remoteAddress: "198.51.100.2" } })]);
  const message = formatSyslogMessage(alert!, { hostname: "host one", processId: 77 });
  const match = rfc5424.exec(message);
  assert.ok(match, message);
  assert.equal(Number(match[1]), 4 * 8 + 3, "facility auth, severity err for a high alert");
  assert.equal(match[3], "host_one");
  assert.equal(match[5], "77");
  assert.equal(match[6], "alert");
  assert.match(match[7]!, /^\[netbpf@32473 rule="ssh-out" severity="high" trigger="5" pid="4242" uid="1000" command="we\\"ird\\]" /);
  assert.equal(match[8], 'ssh-out: we"ird] opened SSH to 198.51.100.2');
  assert.deepEqual(parseSyslogTarget("tcp://[::1]:6514"), { transport: "tcp", host: "::1", port: 6514, path: "" });
  assert.deepEqual(parseSyslogTarget("localhost"), { transport: "udp", host: "localhost", port: 514, path: "" });
  assert.deepEqual(parseSyslogTarget("unix:/dev/log"), { transport: "unix", host: "", port: 0, path: "/dev/log" });
  assert.throws(() => parseSyslogTarget("http://x:1"), /parse syslog target: "http:\/\/x:1": unknown transport/);
});

test("alerts reach a syslog listener over UDP", async (t) => {
  const server = createSocket("udp4");
  t.after(() => server.close());
  const received: string[] = [];
  server.on("message", (message) => received.push(message.toString("utf8")));
  server.bind(0, "127.0.0.1");
  await once(server, "listening");
  const output = new SyslogOutput({ target: `udp://127.0.0.1:${server.address().port}`, facility: "local3" });
  const engine = new AlertEngine({ rules, outputs: [output] });
  await engine.write([record({ flow: { remotePort: 22, remoteAddress: "192.0.2.22" } }), record({ flow: { remotePort: 80 } }), record({ process: { command: "scp" }, flow: { remotePort: 22 } })]);
  await output.drain();
  for (let i = 0; i < 100 && received.length < 2; i++) await delay(20);
  await engine.close();
  assert.equal(received.length, 2);
  assert.ok(received.every((message) => rfc5424.test(message)), received.join("\n"));
  assert.match(received[0]!, /^<155>1 /, "local3 (19) × 8 + err (3)");
  assert.match(received[0]!, / ssh-out: curl opened SSH to 192\.0\.2\.22$/);
  assert.match(received[1]!, / ssh-out: scp opened SSH to /);
  assert.deepEqual({ delivered: output.statistics().delivered, dropped: output.statistics().dropped }, { delivered: 2, dropped: 0 });
});

test("alerts reach a syslog listener over TCP in octet-counted frames, after it comes back", async (t) => {
  const received: Buffer[] = [];
  const server = createTcpServer((socket) => socket.on("data", (data) => received.push(data)));
  t.after(() => server.close());
  // Reserve a port, close it: the first tries are refused, then the server starts.
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  server.close();
  await once(server, "close");
  const output = new SyslogOutput({ target: `tcp://127.0.0.1:${port}`, retry: { initialDelayMilliseconds: 100, factor: 2, attempts: 6 } });
  t.after(() => output.close(100));
  output.write(await alertsFor([record({ flow: { remotePort: 22 } }), record({ flow: { remotePort: 22 } })]));
  await delay(50);
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  await output.drain();
  for (let i = 0; i < 100 && Buffer.concat(received).length === 0; i++) await delay(20);
  const stream = Buffer.concat(received).toString("utf8");
  const frames: string[] = [];
  for (let rest = stream; rest.length > 0;) {
    const match = /^(\d+) /.exec(rest);
    assert.ok(match, `octet count expected at ${JSON.stringify(rest.slice(0, 20))}`);
    const length = Number(match[1]);
    frames.push(Buffer.from(rest.slice(match[0].length)).subarray(0, length).toString("utf8"));
    rest = Buffer.from(rest.slice(match[0].length)).subarray(length).toString("utf8");
  }
  assert.equal(frames.length, 2);
  assert.ok(frames.every((frame) => rfc5424.test(frame)));
  assert.ok(output.statistics().retries >= 1, "the refused connection was retried");
  assert.equal(output.statistics().delivered, 2);
});

test("alerts reach a local unix datagram socket (as /dev/log)", async (t) => {
  const directory = mkdtempSync(join(tmpdir(), "netbpf-syslog-"));
  const path = join(directory, "log");
  const listener = UnixDatagramSocket.bind(path);
  t.after(() => { listener.close(); rmSync(directory, { recursive: true, force: true }); });
  const output = new SyslogOutput({ target: `unix:${path}` });
  output.write(await alertsFor([record({ flow: { remotePort: 22 } })]));
  await output.close();
  const message = listener.receive();
  assert.ok(message !== undefined, "a datagram arrived");
  assert.match(message.toString("utf8"), rfc5424);
  assert.equal(listener.receive(), undefined);
  assert.equal(output.statistics().delivered, 1);
});

test("a webhook that fails first is retried with exponential backoff", async (t) => {
  const arrivals: { time: number; body: unknown; type: string | undefined }[] = [];
  let failuresLeft = 3;
  const server = createHttpServer((request: IncomingMessage, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      arrivals.push({ time: performance.now(), body: JSON.parse(body), type: request.headers["content-type"] });
      if (failuresLeft-- > 0) {
        response.writeHead(503).end("busy");
      } else {
        response.writeHead(204).end();
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => server.close());
  const output = new WebhookOutput({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, retry: { initialDelayMilliseconds: 100, factor: 2, attempts: 5 } });
  const engine = new AlertEngine({ rules, outputs: [output] });
  await engine.write([record({ sequence: 9, flow: { remotePort: 22 } })]);
  assert.deepEqual([arrivals.length, output.statistics().delivered, output.statistics().waiting], [0, 0, 1], "write returned before the webhook answered");
  await output.drain();
  await engine.close();
  assert.equal(arrivals.length, 4, "three failures, then success");
  const gaps = arrivals.slice(1).map((arrival, i) => arrival.time - arrivals[i]!.time);
  // Waits of 100, 200 and 400 ms (timers never fire early; generous upper bounds for a loaded machine).
  for (const [i, expected] of [100, 200, 400].entries()) {
    assert.ok(gaps[i]! >= expected - 5 && gaps[i]! < expected + 1500, `gap ${i + 1}: ${gaps[i]} ms, expected about ${expected}`);
  }
  assert.equal(arrivals[3]!.type, "application/json");
  assert.equal((arrivals[3]!.body as { kind: string; alert: { rule: string; triggerSequence: number } }).alert.triggerSequence, 9);
  assert.deepEqual({ ...output.statistics(), lastError: null }, { queued: 1, delivered: 1, dropped: 0, failed: 0, retries: 3, waiting: 0, lastError: null });
});

test("a webhook answering 4xx is not retried; a full queue drops and counts without waiting", async (t) => {
  let requests = 0;
  let release: () => void = () => {};
  const hold = new Promise<void>((resolve) => (release = resolve));
  const server = createHttpServer((request, response) => {
    requests++;
    request.resume();
    if (request.url === "/gone") response.writeHead(404).end();
    else void hold.then(() => response.writeHead(200).end());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const gone = new WebhookOutput({ url: `${base}/gone`, retry: { initialDelayMilliseconds: 10 } });
  gone.write(await alertsFor([record({ flow: { remotePort: 22 } })]));
  await gone.drain();
  assert.equal(requests, 1);
  assert.equal(gone.statistics().failed, 1);
  assert.match(gone.statistics().lastError!, /answered 404/);
  await gone.close();

  const slow = new WebhookOutput({ url: `${base}/slow`, capacity: 3 });
  const alerts = await alertsFor(Array.from({ length: 10 }, () => record({ flow: { remotePort: 22 } })));
  // The server holds every answer until release(): a write that waited would never return.
  slow.write(alerts);
  assert.equal(slow.statistics().dropped, 7);
  release();
  await slow.drain();
  assert.equal(slow.statistics().delivered, 3);
  await slow.close();
});

test("alert outputs and the delivery queue refuse bad options, naming the option", () => {
  const untyped = (f: (...args: never[]) => unknown, ...args: unknown[]): unknown => (f as (...args: unknown[]) => unknown)(...args);
  const make = <T>(type: new (options: never) => T, options: unknown): T => new type(options as never);
  const cases: [() => unknown, RegExp][] = [
    [() => untyped(parseSyslogTarget, 42), /^parse syslog target: text must be a string, got 42 \(a number\)$/],
    [() => make(SyslogOutput, { target: "udp://127.0.0.1:514", facility: "kernel" }), /syslog output: options\.facility must be one of "kern", .*"local7", got "kernel"/],
    [() => make(SyslogOutput, { target: { transport: "sctp", host: "h", port: 514, path: "" } }), /options\.target\.transport must be one of "udp", "tcp", "unix", got "sctp"/],
    [() => make(SyslogOutput, { target: { transport: "udp", host: "h", port: 0, path: "" } }), /options\.target\.port must be an integer from 1 to 65535, got 0/],
    [() => make(SyslogOutput, { target: "udp://127.0.0.1:514", maximumMessageBytes: 0 }), /options\.maximumMessageBytes must be an integer ≥ 1, got 0/],
    [() => make(SyslogOutput, { target: "udp://127.0.0.1:514", kinds: ["alerts"] }), /options\.kinds\[\] must be one of "connection", .*, got "alerts"/],
    [() => make(SyslogOutput, { target: "udp://127.0.0.1:514", retry: { attempts: 0 } }), /delivery queue: options\.retry\.attempts must be an integer ≥ 1, got 0/],
    [() => make(SyslogOutput, { target: "udp://127.0.0.1:514", retry: { factor: 0.5 } }), /options\.retry\.factor must be a number ≥ 1, got 0\.5/],
    [() => make(WebhookOutput, { url: 42 }), /webhook output: options\.url must be a string, got 42/],
    [() => make(WebhookOutput, { url: "http://127.0.0.1:1/", headers: { authorization: 7 } }), /options\.headers\["authorization"\] must be a string, got 7/],
    [() => make(WebhookOutput, { url: "http://127.0.0.1:1/", capacity: -1 }), /delivery queue: options\.capacity must be an integer ≥ 1, got -1/],
    [() => untyped(formatSyslogMessage, record({}), { processId: -1 }), /format syslog message: options\.processId must be an integer ≥ 0, got -1/],
    [() => untyped(formatSyslogMessage, { kind: "connection", start: new Date(Number.NaN), end: new Date() }), /record\.start must be a valid Date/],
    [() => untyped(retryDelay, defaultRetryPolicy, 0), /^retry delay: attempt must be an integer ≥ 1, got 0/],
    [() => untyped(retryDelay, { ...defaultRetryPolicy, initialDelayMilliseconds: -1 }, 2), /policy\.initialDelayMilliseconds must be a number ≥ 0, got -1/],
    [() => make(DeliveryQueue, { deliver: "post" }), /delivery queue: options\.deliver must be a function/],
  ];
  for (const [call, pattern] of cases) assert.throws(call, (error: unknown) => error instanceof UsageError && pattern.test(error.message), pattern.source);
  // Valid forms still work.
  assert.equal(parseSyslogTarget("x").host, "x");
  assert.equal(retryDelay(defaultRetryPolicy, 3), 1000);
});
