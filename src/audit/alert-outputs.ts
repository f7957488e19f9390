/**
 * Where alerts go besides the audit log: standard output as JSON lines
 * (JsonLinesSink), syslog (RFC 5424 over UDP, TCP or the local unix
 * datagram socket) and an HTTP webhook. Each is an AuditSink that takes
 * alert records (other kinds are ignored unless `kinds` says otherwise) and
 * never makes the recorder wait: messages go through a bounded
 * DeliveryQueue; what does not fit is dropped and counted, failed
 * deliveries are retried with exponential backoff.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { isIPv6 } from "node:net";
import { connect, type Socket as TcpSocket } from "node:net";
import { hostname } from "node:os";
import { expectArray, expectFunction, expectInteger, expectObject, expectOneOf, expectString, expectWritable } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import { UnixDatagramSocket } from "../sys/unix-datagram-socket.js";
import { expectAuditRecord, expectAuditRecordKinds, type AuditRecord, type AuditRecordKind } from "./audit-record.js";
import type { AuditSink } from "./audit-sink.js";
import { DeliveryQueue, PermanentDeliveryError, type DeliveryStatistics, type RetryPolicy } from "./delivery-queue.js";
import { JsonLinesSink } from "./json-lines-sink.js";

/** An alert output: a sink with delivery statistics. */
export interface AlertOutput extends AuditSink {
  /** What the output is, for reports: "syslog udp://127.0.0.1:514". */
  readonly description: string;
  statistics(): DeliveryStatistics | { written: number; dropped: number; lastError: string | null };
}

/** Alerts as JSON lines on standard output (or another stream). */
export function stdoutAlertOutput(stream: NodeJS.WritableStream = process.stdout): AlertOutput {
  expectWritable("stdout alert output", "stream", stream);
  const sink = new JsonLinesSink({ stream, kinds: ["alert"] });
  return Object.assign(sink, { description: "stdout" });
}

// ---------------------------------------------------------------------------
// Syslog (RFC 5424)

export type SyslogTransport = "udp" | "tcp" | "unix";

export interface SyslogTarget {
  transport: SyslogTransport;
  /** Host name or address (udp, tcp). */
  host: string;
  port: number;
  /** Socket path (unix). */
  path: string;
}

/**
 * Parses `udp://HOST[:PORT]`, `tcp://HOST[:PORT]` (port 514 by default; IPv6
 * in brackets), `unix:PATH` or `unix://PATH` (a datagram socket such as
 * /dev/log), or a bare `HOST[:PORT]` (UDP).
 */
export function parseSyslogTarget(text: string): SyslogTarget {
  expectString("parse syslog target", "text", text);
  const bad = (why: string): never => {
    throw new UsageError("parse syslog target", `${JSON.stringify(text)}: ${why}`, "write udp://HOST:PORT, tcp://HOST:PORT or unix:/dev/log");
  };
  const unix = /^unix:(?:\/\/)?(\/.*)$/.exec(text);
  if (unix) return { transport: "unix", host: "", port: 0, path: unix[1]! };
  const match = /^(?:(udp|tcp):\/\/)?(\[[0-9A-Fa-f:.]+\]|[^:/[\]]+)(?::(\d+))?\/?$/.exec(text);
  if (!match) return bad(/^[a-z]+:\/\//.test(text) ? "unknown transport" : "not a syslog target");
  const port = match[3] === undefined ? 514 : Number(match[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) bad(`port ${match[3]} is not 1-65535`);
  const host = match[2]!.replace(/^\[|\]$/g, "");
  return { transport: (match[1] as SyslogTransport | undefined) ?? "udp", host, port, path: "" };
}

/** A SyslogTarget object from a caller (parseSyslogTarget makes one from text). */
function checkSyslogTarget(operation: string, name: string, target: unknown): SyslogTarget {
  const checked = expectObject<SyslogTarget>(operation, name, target);
  expectOneOf(operation, `${name}.transport`, checked.transport, ["udp", "tcp", "unix"]);
  if (checked.transport === "unix") {
    expectString(operation, `${name}.path`, checked.path);
  } else {
    expectString(operation, `${name}.host`, checked.host);
    expectInteger(operation, `${name}.port`, checked.port, 1, 65535);
  }
  return checked;
}

export function formatSyslogTarget(target: SyslogTarget): string {
  if (target.transport === "unix") return `unix:${target.path}`;
  return `${target.transport}://${isIPv6(target.host) ? `[${target.host}]` : target.host}:${target.port}`;
}

/** Syslog facility numbers (RFC 5424 table 1) by name. */
export const syslogFacilities: Readonly<Record<string, number>> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

/** Alert severity → syslog severity: critical 2 (crit), high 3 (err), medium 4 (warning), low 5 (notice), info 6 (info). */
export const syslogSeverities: Readonly<Record<string, number>> = { critical: 2, high: 3, medium: 4, low: 5, info: 6 };

export interface SyslogFormatOptions {
  /** Facility name (default "auth": security messages). */
  facility?: string;
  /** HOSTNAME field (default: this machine's name). */
  hostname?: string;
  /** APP-NAME field (default "netbpf"). */
  appName?: string;
  /** PROCID field (default: this process's id). */
  processId?: number;
  /**
   * SD-ID of the structured data element. The default `netbpf@32473` uses
   * the enterprise number RFC 5612 reserves for documentation; an
   * organisation with its own number should set its own.
   */
  structuredDataId?: string;
}

/**
 * One RFC 5424 message for a record:
 * `<PRI>1 TIMESTAMP HOSTNAME netbpf PROCID alert [netbpf@32473 rule=".." severity=".." …] rule: message`.
 * Records other than alerts get the syslog severity "info" and their kind as MSGID.
 */
export function formatSyslogMessage(record: AuditRecord, options: SyslogFormatOptions = {}): string {
  expectAuditRecord("format syslog message", "record", record);
  checkSyslogFormat("format syslog message", options);
  return syslogMessage(record, options);
}

/** Checks the format options (once, where an output is made: messages are formatted per record). */
function checkSyslogFormat(operation: string, options: SyslogFormatOptions): void {
  expectObject(operation, "options", options);
  if (options.facility !== undefined) expectOneOf(operation, "options.facility", options.facility, Object.keys(syslogFacilities));
  for (const name of ["hostname", "appName", "structuredDataId"] as const) if (options[name] !== undefined) expectString(operation, `options.${name}`, options[name]);
  if (options.processId !== undefined) expectInteger(operation, "options.processId", options.processId, 0);
}

function syslogMessage(record: AuditRecord, options: SyslogFormatOptions): string {
  const facility = syslogFacilities[options.facility ?? "auth"] ?? 4;
  const severity = record.alert !== null ? syslogSeverities[record.alert.severity] ?? 6 : 6;
  const timestamp = record.end.toISOString();
  const host = headerField(options.hostname ?? hostname(), 255);
  const app = headerField(options.appName ?? "netbpf", 48);
  const processId = headerField(String(options.processId ?? process.pid), 128);
  const parameters: [string, string | number | null | undefined][] = [
    ["rule", record.alert?.rule], ["severity", record.alert?.severity], ["sequence", record.sequence || null], ["trigger", record.alert?.triggerSequence],
    ["pid", record.process?.pid], ["uid", record.process?.uid], ["command", record.process?.command],
    ["protocol", record.flow?.protocol], ["direction", record.flow?.direction],
    ["local", record.flow ? `${record.flow.localAddress}:${record.flow.localPort}` : null],
    ["remote", record.flow ? `${record.flow.remoteAddress}:${record.flow.remotePort}` : null],
    ["name", record.flow?.remoteName ?? record.dns?.queryName],
  ];
  const data = parameters
    .filter(([, value]) => value !== null && value !== undefined)
    .map(([name, value]) => ` ${name}="${String(value).replace(/["\\\]]/g, (c) => `\\${c}`)}"`)
    .join("");
  const text = record.alert !== null ? `${record.alert.rule}: ${record.alert.message}` : JSON.stringify(record);
  return `<${facility * 8 + severity}>1 ${timestamp} ${host} ${app} ${processId} ${record.kind} [${options.structuredDataId ?? "netbpf@32473"}${data}] ${text}`;
}

/** A header field: printable US-ASCII without spaces, at most `length` characters, "-" when empty. */
function headerField(text: string, length: number): string {
  const cleaned = text.replace(/[^\x21-\x7e]/g, "_").slice(0, length);
  return cleaned === "" ? "-" : cleaned;
}

export interface SyslogOutputOptions extends SyslogFormatOptions {
  target: string | SyslogTarget;
  /** Kinds sent (default: alerts only). */
  kinds?: readonly AuditRecordKind[];
  /** Messages waiting at most (default 10,000). */
  capacity?: number;
  retry?: Partial<RetryPolicy>;
  /** Largest message in bytes; longer ones are cut (default 8192; UDP datagrams). */
  maximumMessageBytes?: number;
  /** TCP connection timeout (default 5 s). */
  connectTimeoutMilliseconds?: number;
  onError?: (error: unknown) => void;
}

/**
 * Sends records to a syslog server. UDP: one message per datagram (RFC
 * 5426). TCP: octet-counted frames (RFC 6587 `LEN SP MSG`), one connection
 * kept open and reopened after a failure. unix: one datagram per message to
 * a local datagram socket (/dev/log).
 */
export class SyslogOutput implements AlertOutput {
  readonly target: SyslogTarget;
  readonly description: string;
  readonly kinds: readonly AuditRecordKind[];
  readonly #format: SyslogFormatOptions;
  readonly #maximumBytes: number;
  readonly #connectTimeout: number;
  readonly #queue: DeliveryQueue<Buffer>;
  #udp: UdpSocket | undefined;
  #tcp: TcpSocket | undefined;
  #unix: UnixDatagramSocket | undefined;

  constructor(options: SyslogOutputOptions) {
    const operation = "syslog output";
    checkSyslogFormat(operation, options);
    this.target = typeof options.target === "string" ? parseSyslogTarget(options.target) : checkSyslogTarget(operation, "options.target", options.target);
    this.description = `syslog ${formatSyslogTarget(this.target)}`;
    this.kinds = options.kinds === undefined ? ["alert"] : expectAuditRecordKinds(operation, "options.kinds", options.kinds);
    this.#format = options;
    this.#maximumBytes = expectInteger(operation, "options.maximumMessageBytes", options.maximumMessageBytes ?? 8192, 1);
    this.#connectTimeout = expectInteger(operation, "options.connectTimeoutMilliseconds", options.connectTimeoutMilliseconds ?? 5000, 1);
    if (options.onError !== undefined) expectFunction(operation, "options.onError", options.onError);
    const onError = options.onError;
    this.#queue = new DeliveryQueue<Buffer>({
      capacity: options.capacity,
      batchSize: 64,
      retry: options.retry,
      deliver: (messages) => this.#send(messages),
      onError: onError === undefined ? undefined : (error) => onError(error),
    });
  }

  write(records: AuditRecord[]): void {
    expectArray("write to syslog", "records", records);
    const messages: Buffer[] = [];
    for (const record of records) {
      expectAuditRecord("write to syslog", "records[]", record);
      if (!this.kinds.includes(record.kind)) continue;
      let message = Buffer.from(syslogMessage(record, this.#format), "utf8");
      if (message.length > this.#maximumBytes) message = message.subarray(0, this.#maximumBytes);
      messages.push(message);
    }
    if (messages.length > 0) this.#queue.push(messages);
  }

  statistics(): DeliveryStatistics {
    return this.#queue.statistics();
  }

  /** Waits until everything queued is sent or given up on. */
  drain(): Promise<void> {
    return this.#queue.drain();
  }

  async close(timeoutMilliseconds = 5000): Promise<void> {
    expectInteger("close syslog output", "timeoutMilliseconds", timeoutMilliseconds, 0);
    await this.#queue.close(timeoutMilliseconds);
    this.#udp?.close();
    this.#udp = undefined;
    this.#tcp?.destroy();
    this.#tcp = undefined;
    this.#unix?.close();
    this.#unix = undefined;
  }

  async #send(messages: Buffer[]): Promise<void> {
    switch (this.target.transport) {
      case "udp":
        return this.#sendUdp(messages);
      case "tcp":
        return this.#sendTcp(messages);
      case "unix":
        return this.#sendUnix(messages);
    }
  }

  async #sendUdp(messages: Buffer[]): Promise<void> {
    const socket = (this.#udp ??= createSocket(isIPv6(this.target.host) ? "udp6" : "udp4"));
    for (const message of messages) {
      await new Promise<void>((resolve, reject) => {
        socket.send(message, this.target.port, this.target.host, (error) => (error ? reject(error) : resolve()));
      });
    }
  }

  async #sendTcp(messages: Buffer[]): Promise<void> {
    const socket = this.#tcp ?? (await this.#connectTcp());
    const frames = Buffer.concat(messages.flatMap((message) => [Buffer.from(`${message.length} `), message]));
    await new Promise<void>((resolve, reject) => {
      socket.write(frames, (error) => {
        if (error) {
          socket.destroy();
          reject(error);
        } else {
          resolve();
        }
      });
    });
  }

  #connectTcp(): Promise<TcpSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.target.host, port: this.target.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connecting to ${this.description} timed out`));
      }, this.#connectTimeout);
      socket.once("connect", () => {
        clearTimeout(timer);
        this.#tcp = socket;
        socket.on("close", () => { if (this.#tcp === socket) this.#tcp = undefined; });
        // The server never talks back; reading keeps a closed connection noticed.
        socket.resume();
        resolve(socket);
      });
      socket.on("error", (error) => {
        clearTimeout(timer);
        if (this.#tcp === socket) this.#tcp = undefined;
        reject(error);
      });
    });
  }

  async #sendUnix(messages: Buffer[]): Promise<void> {
    const socket = (this.#unix ??= UnixDatagramSocket.create());
    for (const message of messages) {
      if (!socket.send(this.target.path, message)) throw new Error(`${this.description} is full`);
    }
  }
}

// ---------------------------------------------------------------------------
// Webhook

export interface WebhookOutputOptions {
  url: string;
  /** Extra request headers (e.g. an Authorization header). */
  headers?: Record<string, string>;
  /** Kinds sent (default: alerts only). */
  kinds?: readonly AuditRecordKind[];
  /** Requests waiting at most (default 1,000). */
  capacity?: number;
  /** Backoff between tries (default 5 tries: 0.5 s, 1 s, 2 s, 4 s apart). */
  retry?: Partial<RetryPolicy>;
  /** Per-request timeout (default 10 s). */
  timeoutMilliseconds?: number;
  onError?: (error: unknown) => void;
}

/**
 * POSTs each record as a JSON object (the record's fields, Content-Type
 * application/json) to a URL. A 2xx answer is success; a network error, a
 * timeout, 408, 429 or 5xx is retried with exponential backoff; another
 * answer (400, 401, 404 …) is a permanent failure (counted, not retried).
 */
export class WebhookOutput implements AlertOutput {
  readonly url: URL;
  readonly description: string;
  readonly kinds: readonly AuditRecordKind[];
  readonly #headers: Record<string, string>;
  readonly #timeout: number;
  readonly #queue: DeliveryQueue<string>;

  constructor(options: WebhookOutputOptions) {
    const operation = "webhook output";
    expectObject(operation, "options", options);
    expectString(operation, "options.url", options.url);
    if (options.headers !== undefined) {
      for (const [name, value] of Object.entries(expectObject(operation, "options.headers", options.headers))) expectString(operation, `options.headers[${JSON.stringify(name)}]`, value);
    }
    if (options.timeoutMilliseconds !== undefined) expectInteger(operation, "options.timeoutMilliseconds", options.timeoutMilliseconds, 1);
    if (options.onError !== undefined) expectFunction(operation, "options.onError", options.onError);
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new UsageError("webhook output", `${JSON.stringify(options.url)} is not a URL`, "write e.g. https://hooks.example.com/netbpf");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new UsageError("webhook output", `${JSON.stringify(options.url)}: only http and https URLs are supported`);
    }
    this.url = url;
    this.description = `webhook ${url.origin}${url.pathname}`;
    this.kinds = options.kinds === undefined ? ["alert"] : expectAuditRecordKinds(operation, "options.kinds", options.kinds);
    this.#headers = { "content-type": "application/json", "user-agent": "netbpf", ...options.headers };
    this.#timeout = options.timeoutMilliseconds ?? 10_000;
    const onError = options.onError;
    this.#queue = new DeliveryQueue<string>({
      capacity: options.capacity ?? 1000,
      batchSize: 1,
      retry: options.retry,
      deliver: ([body]) => this.#post(body!),
      onError: onError === undefined ? undefined : (error) => onError(error),
    });
  }

  write(records: AuditRecord[]): void {
    expectArray("write to webhook", "records", records);
    const bodies: string[] = [];
    for (const record of records) {
      expectAuditRecord("write to webhook", "records[]", record);
      if (this.kinds.includes(record.kind)) bodies.push(JSON.stringify(record));
    }
    if (bodies.length > 0) this.#queue.push(bodies);
  }

  statistics(): DeliveryStatistics {
    return this.#queue.statistics();
  }

  drain(): Promise<void> {
    return this.#queue.drain();
  }

  async close(timeoutMilliseconds = 5000): Promise<void> {
    expectInteger("close webhook output", "timeoutMilliseconds", timeoutMilliseconds, 0);
    await this.#queue.close(timeoutMilliseconds);
  }

  async #post(body: string): Promise<void> {
    const response = await fetch(this.url, { method: "POST", headers: this.#headers, body, signal: AbortSignal.timeout(this.#timeout) });
    // Read the body so the connection can be reused.
    await response.arrayBuffer().catch(() => undefined);
    if (response.ok) return;
    const message = `${this.description} answered ${response.status} ${response.statusText}`;
    if (response.status === 408 || response.status === 429 || response.status >= 500) throw new Error(message);
    throw new PermanentDeliveryError(message);
  }
}
