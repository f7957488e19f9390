/**
 * The one HTTP listener of `netbpf serve`: Prometheus metrics on /metrics
 * from every plugged-in source, /healthz, and room for a dashboard later.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { NetbpfError, UsageError } from "../sys/errors.js";
import type { MetricsSource } from "./metrics-source.js";

export interface ListenAddress {
  host: string;
  port: number;
}

export const defaultListenAddress: ListenAddress = { host: "127.0.0.1", port: 9435 };

/** "HOST:PORT", ":PORT" (all interfaces), "PORT", or "[IPV6]:PORT". */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError("serve", `--listen needs HOST:PORT, :PORT or PORT (port 0-65535), got "${text}"`);
  }
  const host = match[1] ?? (match[2] === undefined || match[2] === "" ? (text.startsWith(":") ? "0.0.0.0" : defaultListenAddress.host) : match[2]);
  return { host, port };
}

export interface MetricsServerOptions {
  listen?: ListenAddress;
  sources: MetricsSource[];
  /** Also export Node.js process metrics (prom-client's defaults; some of them fail `promtool check metrics`). Default false. */
  processMetrics?: boolean;
}

export class MetricsServer {
  readonly registry = new Registry();
  readonly sources: MetricsSource[];
  readonly #server: Server;
  readonly #lifetime = new AbortController();
  readonly #scrapeDuration: Histogram;
  #address: ListenAddress;
  #closed = false;

  private constructor(options: MetricsServerOptions) {
    this.sources = options.sources;
    this.#address = options.listen ?? defaultListenAddress;
    if (options.processMetrics ?? false) collectDefaultMetrics({ register: this.registry, prefix: "netbpf_exporter_" });
    this.#scrapeDuration = new Histogram({ name: "netbpf_exporter_scrape_duration_seconds", help: "Time spent answering /metrics (reading the kernel's maps and rendering)", buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [this.registry] });
    const sources = this.sources;
    new Gauge({
      name: "netbpf_exporter_source_up",
      help: "1 when a metrics source is running, 0 when it stopped on an error",
      labelNames: ["source"],
      registers: [this.registry],
      collect() {
        for (const source of sources) this.set({ source: source.name }, source.failure === undefined ? 1 : 0);
      },
    });
    for (const source of this.sources) source.register(this.registry);
    this.#server = createServer((request, response) => void this.#handle(request, response));
  }

  /** Listens (so a busy address fails before anything is attached), then starts every source. Throws (having stopped everything) on failure. */
  static async start(options: MetricsServerOptions): Promise<MetricsServer> {
    const server = new MetricsServer(options);
    try {
      await server.#listen();
      for (const source of server.sources) await source.start(server.#lifetime.signal);
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }

  get address(): ListenAddress {
    return this.#address;
  }

  get url(): string {
    const host = this.#address.host.includes(":") ? `[${this.#address.host}]` : this.#address.host;
    return `http://${host}:${this.#address.port}`;
  }

  #listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const { host, port } = this.#address;
      this.#server.once("error", (error: NodeJS.ErrnoException) => {
        const where = `${host}:${port}`;
        if (error.code === "EADDRINUSE") reject(new UsageError("serve", `${where} is already in use`, "stop what listens there, or choose another address with --listen"));
        else if (error.code === "EADDRNOTAVAIL") reject(new UsageError("serve", `${host} is not an address of this host`, "listen on one of its addresses, e.g. 127.0.0.1"));
        else if (error.code === "EACCES") reject(new UsageError("serve", `not allowed to listen on ${where}`, "use a port above 1023"));
        else reject(new NetbpfError("serve", `cannot listen on ${where}: ${error.message}`));
      });
      this.#server.listen(port, host, () => {
        const address = this.#server.address();
        if (address && typeof address === "object") this.#address = { host, port: address.port };
        resolve();
      });
    });
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? "/").split("?")[0];
    try {
      if (request.method !== "GET" && request.method !== "HEAD") {
        response.writeHead(405, { allow: "GET, HEAD" }).end();
      } else if (path === "/metrics") {
        const end = this.#scrapeDuration.startTimer();
        for (const source of this.sources) await source.collect?.();
        end();
        const text = await this.registry.metrics();
        response.writeHead(200, { "content-type": this.registry.contentType }).end(text);
      } else if (path === "/healthz") {
        const failures = this.sources.filter((source) => source.failure !== undefined);
        const body = JSON.stringify({ status: failures.length === 0 ? "ok" : "failing", sources: Object.fromEntries(this.sources.map((source) => [source.name, source.failure ?? "ok"])) });
        response.writeHead(failures.length === 0 ? 200 : 503, { "content-type": "application/json" }).end(`${body}\n`);
      } else if (path === "/") {
        response.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end("netbpf serve: metrics on /metrics, health on /healthz\n");
      } else {
        response.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
      }
    } catch (error) {
      if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      response.end(`netbpf: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }

  /** Stops listening and stops every source (detaching everything). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#lifetime.abort();
    for (const source of this.sources) {
      try {
        source.stop();
      } catch {
        // stop the others
      }
    }
    if (this.#server.listening) {
      await new Promise<void>((resolve) => {
        this.#server.close(() => resolve());
        this.#server.closeAllConnections();
      });
    }
  }
}
