/**
 * RateLimiter: per-source packet-rate and bit-rate limits on one interface's
 * ingress (tc, tcx link), for all traffic or traffic matching a filter, and
 * a SYN-flood guard for listening ports. Component "limit/<interface>".
 *
 * Limits run at tc ingress so that they compose with the firewall's XDP
 * program on the same interface (one XDP program per interface).
 */
import { readFileSync } from "node:fs";
import { u32 } from "../core/codec.js";
import type { BpfMap } from "../core/map.js";
import { MapType } from "../sys/bpf-constants.js";
import { UsageError } from "../sys/errors.js";
import { argumentError, expectBoolean, expectInstance, expectInteger, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";
import { probeHelper } from "../features/features.js";
import { helperIds } from "../asm/helpers.js";
import { cookieCounter, cookieMapName, synCookieHelpers } from "./syn-cookie-code.js";
import { ProgramType } from "../sys/bpf-constants.js";
import { StateStore, type StateAttachment } from "../state/state-store.js";
import { formatAddress } from "./address-prefix.js";
import { HookedComponent, openHookedComponent, storeOption, type HookedComponentDefinition } from "./hooked-component.js";
import {
  bucketKey, bucketValue, capacityOf, limitCounter, limiterMapNames, rateLimiterProgram, type RateUnit,
} from "./rate-limiter-program.js";
import {
  describeTrafficMatch, formatPortRange, portRangeOf, trafficMatchKey, trafficMatchOf, type PortRange, type TrafficMatch,
} from "./traffic-match.js";

export interface Rate {
  unit: RateUnit;
  /** Packets or bits per second. */
  perSecond: number;
}

export interface LimitRuleInput {
  /** "1000pps", "2mbit", "500kbit", "1gbit", or a Rate. */
  rate: string | Rate;
  /** Packets (packet rates) or bytes (bit rates); default: what the rate allows in 100 ms. */
  burst?: number;
  protocol?: string | number;
  ports?: string | number | PortRange;
  expression?: string;
}

export interface SynGuardInput {
  /** Listening port or range to protect. */
  ports: string | number | PortRange;
  /** SYNs per second each source may send (default 20). */
  rate?: number;
  burst?: number;
  /**
   * Answer SYNs with SYN cookies from the program (default: when the kernel
   * has the helpers). false: only the per-source SYN rate limit.
   */
  cookies?: boolean;
}

export interface LimitRule {
  id: number;
  kind: "limit" | "syn-guard";
  rate: Rate;
  burst: number;
  match: TrafficMatch;
  synPorts?: PortRange;
  /** SYN guards: "cookies" (the program answers SYNs with cookies) or "rate-limit" (per-source SYN limit only). */
  synMode?: SynGuardMode;
  createdAt: string;
}

export type SynGuardMode = "cookies" | "rate-limit";

/** Per-rule SYN cookie counts (SYN guards in cookie mode). */
export interface CookieStatus {
  /** SYN-ACKs with a cookie sent by the program. */
  sent: bigint;
  /** ACKs to the listener whose cookie the kernel's check accepted. */
  validated: bigint;
  /** ACKs to the listener with no valid cookie. */
  invalid: bigint;
  /** SYNs passed to the listener without a cookie: its queue not full yet under tcp_syncookies=1, tcp_syncookies=0, no listener here, IP options. */
  fallback: bigint;
}

export interface LimiterConfig {
  interface: string;
  maximumSources: number;
  rules: LimitRule[];
  /** What the SYN-flood guard uses on this kernel. */
  synCookieHelpers: "yes" | "no" | "unknown";
}

export interface LimitRuleStatus extends LimitRule {
  interface: string;
  passed: bigint;
  dropped: bigint;
  droppedBytes: bigint;
  /** SYN guards in cookie mode. */
  cookies?: CookieStatus;
}

export interface SourceStatus {
  interface: string;
  rule: number;
  address: string;
  passed: bigint;
  dropped: bigint;
}

export const limitKind = "limit";
export const defaultMaximumSources = 65536;
const maximumLimitRules = 256;

const rateUnits: Record<string, { unit: RateUnit; factor: number }> = {
  pps: { unit: "packets", factor: 1 }, "/s": { unit: "packets", factor: 1 },
  bit: { unit: "bits", factor: 1 }, bps: { unit: "bits", factor: 1 }, kbit: { unit: "bits", factor: 1e3 }, mbit: { unit: "bits", factor: 1e6 }, gbit: { unit: "bits", factor: 1e9 },
};
export const rateLimits: Record<RateUnit, [number, number]> = { packets: [1, 100_000_000], bits: [8_000, 100e9] };

/** Parses "1000pps", "2mbit", "500kbit", "1gbit"; out-of-range rates are usage errors. */
export function parseRate(rate: string): Rate {
  const text = expectString("parse rate", "rate", rate);
  const match = /^\s*(\d+(?:\.\d+)?)\s*(pps|\/s|bit|bps|kbit|mbit|gbit)\s*$/i.exec(text);
  if (!match) throw new UsageError("parse rate", `${JSON.stringify(text)} is not a rate`, "write e.g. 1000pps, 500kbit, 2mbit or 1gbit");
  const { unit, factor } = rateUnits[match[2]!.toLowerCase()]!;
  const perSecond = Math.round(Number(match[1]) * factor);
  checkRate({ unit, perSecond });
  return { unit, perSecond };
}

function checkRate(rate: Rate): void {
  const [low, high] = rateLimits[rate.unit] ?? [NaN, NaN];
  if (!(rate.perSecond >= low && rate.perSecond <= high) || !Number.isInteger(rate.perSecond)) {
    throw new UsageError("parse rate", `a ${rate.unit} rate must be ${low}-${high} per second, got ${rate.perSecond}`);
  }
}

export function formatRate(rate: Rate): string {
  expectObject("format rate", "rate", rate);
  expectOneOf("format rate", "rate.unit", rate.unit, ["packets", "bits"]);
  expectInteger("format rate", "rate.perSecond", rate.perSecond, 0);
  if (rate.unit === "packets") return `${rate.perSecond}pps`;
  for (const [suffix, factor] of [["gbit", 1e9], ["mbit", 1e6], ["kbit", 1e3]] as const) if (rate.perSecond >= factor && rate.perSecond % factor === 0) return `${rate.perSecond / factor}${suffix}`;
  return `${rate.perSecond}bit`;
}

function defaultBurst(rate: Rate): number {
  return rate.unit === "packets" ? Math.max(1, Math.ceil(rate.perSecond / 10)) : Math.max(3028, Math.ceil(rate.perSecond / 80));
}

function checkBurst(rate: Rate, burst: number): void {
  const minimum = rate.unit === "packets" ? 1 : 1514;
  if (!Number.isInteger(burst) || burst < minimum || burst > 1e9) {
    throw new UsageError("set limit", `burst must be an integer of at least ${minimum} ${rate.unit === "packets" ? "packets" : "bytes (one full frame)"}, got ${burst}`);
  }
  if (capacityOf({ unit: rate.unit, rate: rate.perSecond, burst }) > 2 ** 62) throw new UsageError("set limit", `burst ${burst} is too large for rate ${formatRate(rate)}`);
}

/** A rate a caller gives as an object ({ unit, perSecond }); its range is checked by checkRate. */
function rateOf(operation: string, name: string, value: unknown): Rate {
  if (typeof value !== "object" || value === null) throw argumentError(operation, name, 'a rate like "1000pps" or { unit, perSecond }', value);
  const rate = value as Partial<Rate>;
  return { unit: expectOneOf(operation, `${name}.unit`, rate.unit, ["packets", "bits"]), perSecond: expectInteger(operation, `${name}.perSecond`, rate.perSecond, 1) };
}

function definition(maximumSources: number): HookedComponentDefinition<LimiterConfig> {
  return {
    kind: limitKind,
    hook: "tc ingress",
    programName: "nb_limit",
    maps: {
      [limiterMapNames.buckets]: { name: "nb_limit_bucket", type: MapType.LruHash, key: bucketKey, value: bucketValue, maxEntries: maximumSources },
      [limiterMapNames.counters]: { name: "nb_limit_count", type: MapType.PercpuArray, key: u32, value: limitCounter, maxEntries: maximumLimitRules + 1 },
      [cookieMapName]: { name: "nb_limit_cookie", type: MapType.PercpuArray, key: u32, value: cookieCounter, maxEntries: maximumLimitRules + 1 },
    },
    initialConfig: (interfaceName) => ({ interface: interfaceName, maximumSources, rules: [], synCookieHelpers: probeSynCookieHelpers() }),
    generate: (config) => rateLimiterProgram(config.rules.map((rule) => ({
      slot: rule.id, unit: rule.rate.unit, rate: rule.rate.perSecond, burst: rule.burst, match: rule.match, ...(rule.synPorts ? { synPorts: rule.synPorts } : {}),
      cookies: rule.synMode === "cookies",
    }))),
    summary: (config) => `${config.rules.length} limits: ${config.rules.map(describeLimit).join("; ")}`,
  };
}

export function describeLimit(rule: LimitRule): string {
  expectObject("describe limit", "rule", rule);
  if (rule.kind === "syn-guard") expectObject("describe limit", "rule.synPorts", rule.synPorts);
  else expectObject("describe limit", "rule.match", rule.match);
  expectObject("describe limit", "rule.rate", rule.rate);
  const what = rule.kind === "syn-guard" ? `SYN to port ${formatPortRange(rule.synPorts!)}` : describeTrafficMatch(rule.match).join(" ") || "all traffic";
  const mode = rule.synMode === "cookies" ? ", answered with SYN cookies" : rule.kind === "syn-guard" ? ", no SYN cookies" : "";
  return `${what} ≤ ${formatRate(rule.rate)} per source (burst ${rule.burst})${mode}`;
}

/** Deletes the buckets of one rule slot (no program may be creating them). */
function forgetBuckets(maps: Record<string, BpfMap<any, any>>, slot: number): void {
  const buckets = maps[limiterMapNames.buckets] as BpfMap<{ slot: number }, unknown>;
  const doomed = buckets.lookupBatch().map(([key]) => key).filter((key) => key.slot === slot);
  if (doomed.length) buckets.deleteBatch(doomed);
}

/**
 * Whether tc programs may call every helper the SYN cookie path needs
 * (socket lookup, bpf_tcp_gen_syncookie / bpf_tcp_check_syncookie, resize,
 * redirect): tri-state.
 */
export function probeSynCookieHelpers(): "yes" | "no" | "unknown" {
  try {
    return synCookieHelpers.every((name) => probeHelper(ProgramType.SchedCls, helperIds[name])) ? "yes" : "no";
  } catch {
    return "unknown";
  }
}

/** net.ipv4.tcp_syncookies of the calling process's network namespace (undefined when unreadable). */
export function readSyncookieSetting(): number | undefined {
  try {
    const value = Number(readFileSync("/proc/sys/net/ipv4/tcp_syncookies", "utf8").trim());
    return Number.isInteger(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What bpf_tcp_gen_syncookie does under a tcp_syncookies setting: the kernel
 * makes a cookie for every SYN only at 2; at 1 (the default) only once the
 * listener's SYN queue is full, earlier SYNs go to the listener (counted as
 * fallback); at 0 never.
 */
export function describeSyncookieSetting(value: number | undefined): string {
  if (value === 2) return "tcp_syncookies=2: every SYN gets a cookie";
  if (value === 1) return "tcp_syncookies=1: cookies once the listen queue is full, as the kernel does (set it to 2 for every SYN)";
  if (value === 0) return "tcp_syncookies=0: the kernel makes no cookies, every SYN goes to the listener (set it to 1 or 2)";
  return "tcp_syncookies unknown";
}

export class RateLimiter {
  readonly #component: HookedComponent<LimiterConfig>;
  readonly interfaceName: string;

  private constructor(component: HookedComponent<LimiterConfig>) {
    expectInstance("construct RateLimiter", "component", component, HookedComponent, "a HookedComponent (use RateLimiter.open)");
    this.#component = component;
    this.interfaceName = component.interfaceName;
  }

  /** The limiter of an interface. `maximumSources` sizes the LRU map when it is first installed. */
  static open(interfaceName: string, options: { store?: StateStore; maximumSources?: number } = {}): RateLimiter {
    expectObject("open limiter", "options", options);
    const maximumSources = expectInteger("open limiter", "options.maximumSources", options.maximumSources ?? defaultMaximumSources, 16, 1 << 24);
    return new RateLimiter(openHookedComponent(definition(maximumSources), interfaceName, options));
  }

  static installed(options: { store?: StateStore } = {}): RateLimiter[] {
    const store = storeOption("list limiters", options);
    return store.components(limitKind).map((component) => new RateLimiter(new HookedComponent(definition(defaultMaximumSources), component.name, store, { checkInterface: false })));
  }

  config(): LimiterConfig | undefined {
    return this.#component.config();
  }

  attachments(): StateAttachment[] {
    return this.#component.attachments();
  }

  /** Adds a per-source limit for all traffic or for what the match selects. */
  limit(input: LimitRuleInput): LimitRule {
    const operation = "set limit";
    expectObject(operation, "input", input);
    const rate = typeof input.rate === "string" ? parseRate(input.rate) : rateOf(operation, "input.rate", input.rate);
    checkRate(rate);
    const burst = input.burst === undefined ? defaultBurst(rate) : expectInteger(operation, "input.burst", input.burst, 1);
    checkBurst(rate, burst);
    const match = trafficMatchOf(operation, "input", input);
    return this.#add({ kind: "limit", rate, burst, match });
  }

  /**
   * SYN-flood guard: each source may open at most `rate` connections per
   * second to the ports (TCP SYN without ACK); more are dropped before they
   * reach the listening socket. Where the kernel has the helpers (probed),
   * the SYNs within the rate are answered with SYN cookies by the program
   * itself, so a flood from many spoofed sources never reaches the
   * listener's queue; `rule.synMode` says which mode is in use.
   */
  guardSyn(input: SynGuardInput): LimitRule {
    const operation = "guard against SYN floods";
    expectObject(operation, "input", input);
    const synPorts = portRangeOf(operation, "input.ports", input.ports);
    const rate: Rate = { unit: "packets", perSecond: input.rate === undefined ? 20 : expectInteger(operation, "input.rate", input.rate, 1) };
    checkRate(rate);
    const burst = input.burst === undefined ? Math.max(2, Math.ceil(rate.perSecond / 5)) : expectInteger(operation, "input.burst", input.burst, 1);
    checkBurst(rate, burst);
    const cookies = expectBoolean(operation, "input.cookies", input.cookies, true);
    const synMode: SynGuardMode = cookies !== false && probeSynCookieHelpers() === "yes" ? "cookies" : "rate-limit";
    return this.#add({ kind: "syn-guard", rate, burst, match: {}, synPorts, synMode });
  }

  #add(rule: Omit<LimitRule, "id" | "createdAt">): LimitRule {
    return this.#component.change((config, maps) => {
      const key = (candidate: Omit<LimitRule, "id" | "createdAt">) => `${candidate.kind}:${trafficMatchKey(candidate.match)}:${candidate.synPorts ? formatPortRange(candidate.synPorts) : ""}`;
      const existing = config.rules.find((candidate) => key(candidate) === key(rule));
      if (existing) {
        throw new UsageError(`add limit on ${this.interfaceName}`, `limit ${existing.id} (${describeLimit(existing)}) already covers the same traffic`, "delete it first (`netbpf limit delete ID`)");
      }
      const used = new Set(config.rules.map((candidate) => candidate.id));
      let id = 1;
      while (used.has(id)) id++;
      if (id > maximumLimitRules) throw new UsageError(`add limit on ${this.interfaceName}`, `at most ${maximumLimitRules} limits per interface`);
      const stored: LimitRule = { id, ...rule, createdAt: new Date().toISOString() };
      (maps[limiterMapNames.counters] as BpfMap<number, unknown>).putPerCpu(id, { passed: 0n, dropped: 0n, droppedBytes: 0n });
      (maps[cookieMapName] as BpfMap<number, unknown>).putPerCpu(id, { sent: 0n, validated: 0n, invalid: 0n, fallback: 0n });
      forgetBuckets(maps, id);
      return { config: { ...config, rules: [...config.rules, stored] }, result: stored };
    });
  }

  deleteRule(id: number): LimitRule {
    expectInteger("delete limit", "id", id, 1, maximumLimitRules);
    return this.#component.change((config, maps) => {
      const rule = config.rules.find((candidate) => candidate.id === id);
      if (!rule) throw new UsageError(`delete limit on ${this.interfaceName}`, `there is no limit ${id}`, "list them with `netbpf limit status`");
      return {
        config: { ...config, rules: config.rules.filter((candidate) => candidate.id !== id) },
        result: rule,
        // Forget the rule's buckets once no program uses them.
        afterProgram: () => forgetBuckets(maps, id),
      };
    }, { mustExist: true });
  }

  rules(): LimitRuleStatus[] {
    const config = this.config();
    if (!config) return [];
    using counters = this.#component.openMap<number, { passed: bigint; dropped: bigint; droppedBytes: bigint }>(limiterMapNames.counters);
    const cookieRules = config.rules.filter((rule) => rule.synMode === "cookies");
    using cookieCounters = cookieRules.length ? this.#component.openMap<number, CookieStatus>(cookieMapName) : undefined;
    return config.rules.map((rule) => {
      const totals = { passed: 0n, dropped: 0n, droppedBytes: 0n };
      for (const value of counters.getPerCpu(rule.id) ?? []) {
        totals.passed += value.passed;
        totals.dropped += value.dropped;
        totals.droppedBytes += value.droppedBytes;
      }
      if (!cookieCounters || rule.synMode !== "cookies") return { ...rule, interface: this.interfaceName, ...totals };
      const cookies: CookieStatus = { sent: 0n, validated: 0n, invalid: 0n, fallback: 0n };
      for (const value of cookieCounters.getPerCpu(rule.id) ?? []) {
        cookies.sent += value.sent;
        cookies.validated += value.validated;
        cookies.invalid += value.invalid;
        cookies.fallback += value.fallback;
      }
      return { ...rule, interface: this.interfaceName, ...totals, cookies };
    });
  }

  /** Sources with the most dropped packets (then most passed), from the LRU buckets. */
  topSources(count = 10): SourceStatus[] {
    expectInteger("list limited sources", "count", count, 0);
    if (!this.config()) return [];
    using buckets = this.#component.openMap<{ slot: number; family: number; address: Buffer }, { passed: bigint; dropped: bigint }>(limiterMapNames.buckets);
    const all: SourceStatus[] = [];
    buckets.forEachBatch((key, value) => {
      const v = value as { passed: bigint; dropped: bigint };
      all.push({ interface: this.interfaceName, rule: key.slot, address: formatAddress(key.family === 6 ? 6 : 4, key.address), passed: v.passed, dropped: v.dropped });
    });
    all.sort((x, y) => (y.dropped > x.dropped ? 1 : y.dropped < x.dropped ? -1 : y.passed > x.passed ? 1 : y.passed < x.passed ? -1 : 0));
    return all.slice(0, count);
  }

  uninstall(): void {
    this.#component.uninstall();
  }
}
