import type { Command } from "commander";
import { describeLimit, describeSyncookieSetting, parseRate, RateLimiter, readSyncookieSetting, type LimitRuleInput } from "../firewall/rate-limiter.js";
import { UsageError } from "../sys/errors.js";
import { delay } from "../sys/delay.js";
import { requireInterface } from "./block-command.js";
import { renderTable, toJson, writeLine } from "./output.js";

function positiveInteger(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError("limit", `${what} must be a positive integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

function limiters(name: string | undefined): RateLimiter[] {
  const all = RateLimiter.installed();
  if (!name) return all;
  const match = all.filter((limiter) => limiter.interfaceName === name);
  if (match.length === 0) throw new UsageError("limit", `no limits are installed on ${name}`, "add one with `netbpf limit -i IFACE --rate …`");
  return match;
}

function printStatus(options: { interface?: string; top?: string; json?: boolean }): void {
  const top = positiveInteger(options.top, "--top") ?? 10;
  const rows: (string | number)[][] = [];
  const sources: (string | number)[][] = [];
  for (const limiter of limiters(options.interface)) {
    for (const rule of limiter.rules()) {
      if (options.json) writeLine(toJson({ type: "limit", ...rule }));
      else {
        const cookies = rule.cookies ? `${rule.cookies.sent}/${rule.cookies.validated}/${rule.cookies.invalid}/${rule.cookies.fallback}` : "-";
        rows.push([rule.interface, rule.id, describeLimit(rule), rule.passed.toString(), rule.dropped.toString(), rule.droppedBytes.toString(), cookies]);
      }
    }
    for (const source of limiter.topSources(top)) {
      if (options.json) writeLine(toJson({ type: "source", ...source }));
      else sources.push([source.interface, source.rule, source.address, source.passed.toString(), source.dropped.toString()]);
    }
  }
  if (options.json) return;
  if (rows.length === 0) {
    writeLine("no limits installed");
    return;
  }
  writeLine(renderTable(["INTERFACE", "ID", "LIMIT", "PASSED", "DROPPED", "DROPPED_BYTES", "COOKIES SENT/VALID/INVALID/FALLBACK"], rows));
  writeLine("");
  writeLine(sources.length ? renderTable(["INTERFACE", "LIMIT", "SOURCE", "PASSED", "DROPPED"], sources) : "no sources seen yet");
}

export function registerLimitCommand(program: Command): void {
  const limit = program
    .command("limit")
    .description("per-source packet-rate and bit-rate limits (token buckets in an LRU map) at an interface's ingress; SYN-flood guard")
    .option("-i, --interface <name>", "the interface (required)")
    .option("-r, --rate <rate>", "per-source rate: 1000pps, 500kbit, 2mbit, 1gbit")
    .option("--burst <n>", "packets (pps) or bytes (bit rates) a source may send at once (default: 100 ms worth)")
    .option("-p, --protocol <protocol>", "only this protocol")
    .option("--port <port>", "only this source or destination port (or range)")
    .option("-f, --filter <expression>", "only traffic matching this pcap-filter expression")
    .option("--max-sources <n>", "sources tracked at once (LRU; set on first install)", "65536")
    .option("--json", "print the new limit as JSON")
    .action((options: { interface?: string; rate?: string; burst?: string; protocol?: string; port?: string; filter?: string; maxSources: string; json?: boolean }) => {
      const name = requireInterface("limit", options.interface);
      if (!options.rate) throw new UsageError("limit", "no rate given", "e.g. --rate 1000pps or --rate 2mbit; see also `netbpf limit syn` and `netbpf limit status`");
      const input: LimitRuleInput = { rate: parseRate(options.rate) };
      const burst = positiveInteger(options.burst, "--burst");
      if (burst !== undefined) input.burst = burst;
      if (options.protocol !== undefined) input.protocol = options.protocol;
      if (options.port !== undefined) input.ports = options.port;
      if (options.filter !== undefined) input.expression = options.filter;
      const limiter = RateLimiter.open(name, { maximumSources: positiveInteger(options.maxSources, "--max-sources")! });
      const rule = limiter.limit(input);
      if (options.json) writeLine(toJson({ interface: name, ...rule }));
      else writeLine(`limit ${rule.id} on ${name}: ${describeLimit(rule)} (${limiter.attachments().map((a) => `${a.hook}: ${a.mechanism}`).join(", ")})`);
    });

  limit
    .command("syn")
    .description("SYN-flood guard: at most RATE new connections per second per source to a listening port")
    .option("-i, --interface <name>", "the interface (required)")
    .option("--port <port>", "the listening port or range (required)")
    .option("-r, --rate <n>", "SYNs per second per source", "20")
    .option("--burst <n>", "SYNs a source may send at once")
    .option("--no-cookies", "only the per-source SYN limit: never answer SYNs with SYN cookies")
    .action((own: { interface?: string; port?: string; rate: string; burst?: string; cookies: boolean }) => {
      // Options written after `syn` may have been taken by `limit` itself.
      const parent = limit.opts() as { interface?: string; port?: string; rate?: string; burst?: string };
      const options = { interface: own.interface ?? parent.interface, port: own.port ?? parent.port, rate: parent.rate ?? own.rate, burst: own.burst ?? parent.burst };
      const name = requireInterface("limit syn", options.interface);
      if (!options.port) throw new UsageError("limit syn", "no port given", "name the listening port with --port");
      const burst = positiveInteger(options.burst, "--burst");
      const limiter = RateLimiter.open(name);
      const rule = limiter.guardSyn({ ports: options.port, rate: positiveInteger(options.rate, "--rate")!, ...(burst !== undefined ? { burst } : {}), cookies: own.cookies });
      const helpers = limiter.config()?.synCookieHelpers;
      const mode = rule.synMode === "cookies" ? `SYN cookies answered by the program, plus the per-source SYN limit; ${describeSyncookieSetting(readSyncookieSetting())}`
        : own.cookies ? `per-source SYN limit only (kernel SYN cookie helpers: ${helpers})` : "per-source SYN limit only (--no-cookies)";
      writeLine(`limit ${rule.id} on ${name}: ${describeLimit(rule)} (mode: ${mode})`);
    });

  limit
    .command("status")
    .description("limits with passed/dropped counts and the top offending sources")
    .option("-i, --interface <name>", "only this interface")
    .option("--top <n>", "how many sources to show", "10")
    .option("--json", "one JSON object per limit and per source")
    .option("-w, --watch <seconds>", "refresh every SECONDS until interrupted")
    .action(async (options: { interface?: string; top?: string; json?: boolean; watch?: string }) => {
      options.interface ??= (limit.opts() as { interface?: string }).interface;
      options.json ??= (limit.opts() as { json?: boolean }).json;
      const interval = positiveInteger(options.watch, "--watch");
      if (interval === undefined) {
        printStatus(options);
        return;
      }
      const controller = new AbortController();
      process.once("SIGINT", () => controller.abort());
      while (!controller.signal.aborted) {
        if (!options.json) process.stdout.write("\x1b[H\x1b[2J");
        writeLine(`${new Date().toISOString()}  (every ${interval} s; Ctrl-C to stop)`);
        printStatus(options);
        await delay(interval * 1000, controller.signal);
      }
    });

  limit
    .command("delete")
    .description("delete a limit by its id")
    .argument("<id>", "limit id (from `netbpf limit status`)")
    .option("-i, --interface <name>", "the interface (required)")
    .action((idText: string, options: { interface?: string }) => {
      options.interface ??= (limit.opts() as { interface?: string }).interface;
      const name = requireInterface("limit delete", options.interface);
      const id = positiveInteger(idText, "limit id")!;
      const [limiter] = limiters(name);
      const rule = limiter!.deleteRule(id);
      writeLine(`deleted limit ${rule.id} on ${name}: ${describeLimit(rule)}`);
    });
}
