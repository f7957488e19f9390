/**
 * The one HTTP listener of `netbpf serve`: Prometheus metrics on /metrics
 * from every plugged-in source, /healthz, and (with a DashboardFeed) the live
 * dashboard: the page on /, its files on /assets/, its Server-Sent Events
 * stream on /api/events, and JSON on /api/connections and /api/filter.
 * With a DashboardAccess that requires a token, every path but /healthz
 * needs it. Only GET and HEAD are answered: nothing here changes anything.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { expectArray, expectBoolean, expectFunction, expectInstance, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { NetbpfError, UsageError } from "../sys/errors.js";
import type { MetricsSource } from "./metrics-source.js";
import { ConnectionFilter } from "./connection-filter.js";
import { DashboardAccess, tokenCookieName } from "./dashboard-access.js";
import { DashboardAssets } from "./dashboard-assets.js";
import { DashboardFeed } from "./dashboard-feed.js";

export interface ListenAddress {
  host: string;
  port: number;
}

export const defaultListenAddress: ListenAddress = { host: "127.0.0.1", port: 9435 };

/** "HOST:PORT", ":PORT" (all interfaces), "PORT", or "[IPV6]:PORT". */
export function parseListenAddress(listen: string): ListenAddress {
  expectString("serve", "listen", listen);
  const bad = () => new UsageError("serve", `--listen needs HOST:PORT, :PORT or PORT (port 0-65535), got "${listen}"`);
  let host: string;
  let portText: string;
  const bracketed = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(listen);
  const plain = /^([^:[\]]*):(\d+)$/.exec(listen);
  if (bracketed) [host, portText] = [bracketed[1]!, bracketed[2]!];
  else if (plain) [host, portText] = [plain[1] === "" ? "0.0.0.0" : plain[1]!, plain[2]!];
  else if (/^\d+$/.test(listen)) [host, portText] = [defaultListenAddress.host, listen];
  else throw bad();
  const port = Number(portText);
  if (!Number.isInteger(port) || port > 65535) throw bad();
  return { host, port };
}

export interface MetricsServerOptions {
  listen?: ListenAddress;
  sources: MetricsSource[];
  /** Also export Node.js process metrics (prom-client's defaults; some of them fail `promtool check metrics`). Default false. */
  processMetrics?: boolean;
  /** Serve the live dashboard from this feed (started and stopped with the server). */
  dashboard?: DashboardFeed;
  /** Who may use the server (default: anyone who can connect, as before the dashboard). */
  access?: DashboardAccess;
}

/** Headers of every dashboard answer: nothing from elsewhere, no framing, no sniffing. */
const pageHeaders = {
  "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

function sendJson(response: ServerResponse, status: number, value: unknown): void {
  response.writeHead(status, { ...pageHeaders, "content-type": "application/json; charset=utf-8" }).end(`${JSON.stringify(value)}\n`);
}

function sendError(response: ServerResponse, status: number, message: string): void {
  sendJson(response, status, { error: { message } });
}

/** The `filter` query parameter as a compiled filter (undefined when absent or empty); throws a UsageError with the compiler's message. */
function queryFilter(query: URLSearchParams): ConnectionFilter | undefined {
  const values = query.getAll("filter");
  if (values.length > 1) throw new UsageError("filter connections", "give one filter");
  const text = values[0]?.trim() ?? "";
  return text === "" ? undefined : ConnectionFilter.compile(text);
}

export class MetricsServer {
  readonly registry = new Registry();
  readonly sources: MetricsSource[];
  readonly #server: Server;
  readonly #lifetime = new AbortController();
  readonly #scrapeDuration: Histogram;
  readonly dashboard: DashboardFeed | undefined;
  readonly access: DashboardAccess | undefined;
  readonly #assets: DashboardAssets | undefined;
  #address: ListenAddress;
  #closed = false;

  private constructor(options: MetricsServerOptions) {
    const operation = "metrics server";
    expectObject(operation, "options", options);
    this.sources = expectArray<MetricsSource>(operation, "options.sources", options.sources);
    this.sources.forEach((source, index) => {
      expectObject(operation, `options.sources[${index}]`, source);
      for (const method of ["register", "start", "stop"] as const) expectFunction(operation, `options.sources[${index}].${method}`, source[method]);
    });
    if (options.listen !== undefined) {
      expectObject(operation, "options.listen", options.listen);
      expectString(operation, "options.listen.host", options.listen.host);
      expectInteger(operation, "options.listen.port", options.listen.port, 0, 65535);
    }
    if (options.processMetrics !== undefined) expectBoolean(operation, "options.processMetrics", options.processMetrics);
    if (options.dashboard !== undefined) expectInstance(operation, "options.dashboard", options.dashboard, DashboardFeed);
    if (options.access !== undefined) expectInstance(operation, "options.access", options.access, DashboardAccess, "a DashboardAccess (from DashboardAccess.forListen)");
    this.dashboard = options.dashboard;
    this.access = options.access;
    this.#assets = options.dashboard ? new DashboardAssets() : undefined;
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
      server.dashboard?.start(server.#lifetime.signal);
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
    let url: URL;
    try {
      url = new URL(request.url ?? "/", "http://netbpf.invalid");
    } catch {
      response.writeHead(400, { "content-type": "text/plain; charset=utf-8" }).end("bad request\n");
      return;
    }
    const path = url.pathname;
    try {
      if (request.method !== "GET" && request.method !== "HEAD") {
        response.writeHead(405, { allow: "GET, HEAD" }).end();
        return;
      }
      if (path === "/healthz") {
        const failures = this.sources.filter((source) => source.failure !== undefined);
        const feedFailure = this.dashboard?.failure;
        const healthy = failures.length === 0 && feedFailure === undefined;
        const sources = Object.fromEntries(this.sources.map((source) => [source.name, source.failure ?? "ok"]));
        if (this.dashboard) sources.dashboard = feedFailure ?? "ok";
        const body = JSON.stringify({ status: healthy ? "ok" : "failing", sources });
        response.writeHead(healthy ? 200 : 503, { "content-type": "application/json" }).end(`${body}\n`);
        return;
      }
      if (this.access && !this.#allowed(request, response, url)) return;
      if (path === "/metrics") {
        const end = this.#scrapeDuration.startTimer();
        for (const source of this.sources) await source.collect?.();
        end();
        const text = await this.registry.metrics();
        response.writeHead(200, { "content-type": this.registry.contentType }).end(text);
      } else if (this.dashboard && this.#assets) {
        this.#handleDashboard(path, url.searchParams, request, response, this.dashboard, this.#assets);
      } else if (path === "/") {
        response.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end("netbpf serve: metrics on /metrics, health on /healthz (the dashboard needs --ui)\n");
      } else {
        response.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
      }
    } catch (error) {
      if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      response.end(`netbpf: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }

  /** Checks the request's token (or host); answers it when refused. */
  #allowed(request: IncomingMessage, response: ServerResponse, url: URL): boolean {
    const decision = this.access!.check(request, url.searchParams);
    if (decision === "allowed") {
      // A page opened as /?token=…: keep the token in a cookie and drop it from the address bar.
      if (url.pathname === "/" && url.searchParams.has("token") && this.access!.required) {
        response.writeHead(303, { ...pageHeaders, location: "/", "set-cookie": `${tokenCookieName}=${this.access!.token}; Path=/; HttpOnly; SameSite=Strict` }).end();
        return false;
      }
      return true;
    }
    const message =
      decision === "host not allowed"
        ? "this dashboard answers only to a loopback host name (127.0.0.1, localhost, [::1])"
        : decision === "token missing"
          ? "this dashboard needs its token: open the address netbpf serve printed (…/?token=…) or send Authorization: Bearer TOKEN"
          : "wrong token: open the address netbpf serve printed (…/?token=…)";
    sendError(response, decision === "host not allowed" ? 403 : 401, message);
    return false;
  }

  #handleDashboard(path: string, query: URLSearchParams, request: IncomingMessage, response: ServerResponse, feed: DashboardFeed, assets: DashboardAssets): void {
    const asset = path === "/" ? assets.get("index.html") : path.startsWith("/assets/") ? assets.get(path.slice("/assets/".length)) : undefined;
    if (asset) {
      response.writeHead(200, { ...pageHeaders, "content-type": asset.contentType, "content-length": asset.body.length }).end(request.method === "HEAD" ? undefined : asset.body);
      return;
    }
    try {
      if (path === "/api/events") {
        const sinceText = query.get("since");
        const since = sinceText === null || sinceText === "" ? undefined : Number(sinceText);
        if (since !== undefined && !Number.isFinite(since)) throw new UsageError("dashboard", `since must be a time in milliseconds, got "${sinceText!.slice(0, 40)}"`);
        feed.subscribe(response, { filter: queryFilter(query), since });
      } else if (path === "/api/filter") {
        const filter = queryFilter(new URLSearchParams({ filter: query.get("expression") ?? "" }));
        sendJson(response, 200, { expression: filter?.expression ?? "" });
      } else if (path === "/api/connections") {
        const update = feed.update(queryFilter(query));
        sendJson(response, 200, update ? { time: update.time, ...update.connections } : { time: null, rows: [], total: 0, matched: 0 });
      } else {
        sendError(response, 404, `no such path: ${path.slice(0, 100)}`);
      }
    } catch (error) {
      if (response.headersSent) throw error;
      if (error instanceof UsageError) sendError(response, 400, error.message);
      else if (error instanceof NetbpfError) sendError(response, 503, error.message);
      else throw error;
    }
  }

  /** Stops listening and stops every source (detaching everything). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#lifetime.abort();
    this.dashboard?.stop();
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
