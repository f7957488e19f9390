/**
 * Marker: sets skb priority, fwmark or DSCP on an interface's egress traffic
 * that matches a rule, so the qdiscs (prio, htb, fq_codel …), fwmark
 * routing and the network honour it. Component "mark/<interface>", one tcx
 * egress program; rules are checked in order, the first match marks.
 */
import { u32 } from "../core/codec.js";
import type { BpfMap } from "../core/map.js";
import { MapType } from "../sys/bpf-constants.js";
import { UsageError } from "../sys/errors.js";
import { argumentError, expectInstance, expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { StateStore, type StateAttachment } from "../state/state-store.js";
import { ruleCounter } from "./firewall-program.js";
import { HookedComponent, openHookedComponent, storeOption, type HookedComponentDefinition } from "./hooked-component.js";
import { markerMapNames, markerProgram, type MarkActions } from "./marker-program.js";
import {
  describeTrafficMatch, trafficMatchKey, trafficMatchOf, type PortRange, type TrafficMatch,
} from "./traffic-match.js";

export type { MarkActions };

export interface MarkRuleInput {
  /** A tc class id ("1:2") or a number. */
  priority?: string | number;
  fwmark?: string | number;
  /** 0-63 or a name (ef, af41, cs1 …). */
  dscp?: string | number;
  protocol?: string | number;
  ports?: string | number | PortRange;
  expression?: string;
}

export interface MarkRule {
  id: number;
  match: TrafficMatch;
  actions: MarkActions;
  createdAt: string;
}

export interface MarkRuleStatus extends MarkRule {
  interface: string;
  packets: bigint;
  bytes: bigint;
}

export interface MarkerConfig {
  interface: string;
  rules: MarkRule[];
}

export const markKind = "mark";
const maximumMarkRules = 256;

/** DSCP names (RFC 4594 / 2474 / 3246) and numbers 0-63. */
const dscpNames: Record<string, number> = {
  cs0: 0, cs1: 8, cs2: 16, cs3: 24, cs4: 32, cs5: 40, cs6: 48, cs7: 56, ef: 46, va: 44, le: 1,
  af11: 10, af12: 12, af13: 14, af21: 18, af22: 20, af23: 22, af31: 26, af32: 28, af33: 30, af41: 34, af42: 36, af43: 38,
};

export function parseDscp(dscp: string): number {
  const text = expectString("parse dscp", "dscp", dscp);
  const lower = text.trim().toLowerCase();
  if (Object.hasOwn(dscpNames, lower)) return dscpNames[lower]!;
  const value = /^(0x[0-9a-f]+|\d+)$/.test(lower) ? Number(lower) : NaN;
  if (!(value >= 0 && value <= 63)) throw new UsageError("parse dscp", `DSCP must be 0-63 or a name like ef, af41, cs1, got ${JSON.stringify(text)}`);
  return value;
}

/** tc class ids "1:2" (hex major:minor, as tc writes them) or a plain number. */
export function parsePriority(priority: string): number {
  const text = expectString("parse priority", "priority", priority);
  const trimmed = text.trim();
  const classId = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(trimmed);
  if (classId) return ((parseInt(classId[1]!, 16) << 16) | parseInt(classId[2]!, 16)) >>> 0;
  if (/^(0x[0-9a-f]{1,8}|\d{1,10})$/i.test(trimmed) && Number(trimmed) <= 0xffffffff) return Number(trimmed);
  throw new UsageError("parse priority", `priority must be a tc class id like 1:2 or a number 0-4294967295, got ${JSON.stringify(text)}`);
}

export function parseFwmark(fwmark: string): number {
  const text = expectString("parse fwmark", "fwmark", fwmark);
  const trimmed = text.trim();
  if (/^(0x[0-9a-f]{1,8}|\d{1,10})$/i.test(trimmed) && Number(trimmed) <= 0xffffffff) return Number(trimmed);
  throw new UsageError("parse fwmark", `fwmark must be a number 0-4294967295 (or 0x…), got ${JSON.stringify(text)}`);
}

export function describeMarkActions(actions: MarkActions): string {
  const parts: string[] = [];
  if (actions.priority !== undefined) parts.push(`priority ${(actions.priority >>> 16).toString(16)}:${(actions.priority & 0xffff).toString(16)}`);
  if (actions.fwmark !== undefined) parts.push(`fwmark 0x${actions.fwmark.toString(16)}`);
  if (actions.dscp !== undefined) parts.push(`dscp ${actions.dscp}`);
  return parts.join(", ");
}

export function describeMark(rule: MarkRule): string {
  expectObject("describe mark", "rule", rule);
  expectObject("describe mark", "rule.match", rule.match);
  expectObject("describe mark", "rule.actions", rule.actions);
  return `${describeTrafficMatch(rule.match).join(" ") || "all traffic"} → ${describeMarkActions(rule.actions)}`;
}

/** A mark field given as text or a number, as text for its parser. */
function markText(operation: string, name: string, value: unknown, expected: string): string {
  if (typeof value !== "string" && typeof value !== "number") throw argumentError(operation, name, expected, value);
  return String(value);
}

const definition: HookedComponentDefinition<MarkerConfig> = {
  kind: markKind,
  hook: "tc egress",
  programName: "nb_mark",
  maps: { [markerMapNames.counters]: { name: "nb_mark_count", type: MapType.PercpuArray, key: u32, value: ruleCounter, maxEntries: maximumMarkRules + 1 } },
  initialConfig: (interfaceName) => ({ interface: interfaceName, rules: [] }),
  generate: (config) => markerProgram(config.rules.map((rule) => ({ slot: rule.id, match: rule.match, actions: rule.actions }))),
  summary: (config) => `${config.rules.length} marks: ${config.rules.map(describeMark).join("; ")}`,
};

export class Marker {
  readonly #component: HookedComponent<MarkerConfig>;
  readonly interfaceName: string;

  private constructor(component: HookedComponent<MarkerConfig>) {
    expectInstance("construct Marker", "component", component, HookedComponent, "a HookedComponent (use Marker.open)");
    this.#component = component;
    this.interfaceName = component.interfaceName;
  }

  static open(interfaceName: string, options: { store?: StateStore } = {}): Marker {
    return new Marker(openHookedComponent(definition, interfaceName, options));
  }

  static installed(options: { store?: StateStore } = {}): Marker[] {
    const store = storeOption("list markers", options);
    return store.components(markKind).map((component) => new Marker(new HookedComponent(definition, component.name, store, { checkInterface: false })));
  }

  config(): MarkerConfig | undefined {
    return this.#component.config();
  }

  attachments(): StateAttachment[] {
    return this.#component.attachments();
  }

  /** Adds a rule: traffic matching it leaves with the given priority, fwmark and/or DSCP. */
  mark(input: MarkRuleInput): MarkRule {
    const operation = "add mark";
    expectObject(operation, "input", input);
    const actions: MarkActions = {};
    if (input.priority !== undefined) actions.priority = parsePriority(markText(operation, "input.priority", input.priority, 'a tc class id like "1:2" or a number'));
    if (input.fwmark !== undefined) actions.fwmark = parseFwmark(markText(operation, "input.fwmark", input.fwmark, "a number 0-4294967295"));
    if (input.dscp !== undefined) actions.dscp = parseDscp(markText(operation, "input.dscp", input.dscp, "0-63 or a name like ef, af41, cs1"));
    if (Object.keys(actions).length === 0) throw new UsageError(operation, "nothing to set: input has no priority, fwmark or dscp", "give --priority, --fwmark and/or --dscp");
    const match = trafficMatchOf(operation, "input", input);
    return this.#component.change((config, maps) => {
      const existing = config.rules.find((rule) => trafficMatchKey(rule.match) === trafficMatchKey(match));
      if (existing) {
        throw new UsageError(`add mark on ${this.interfaceName}`, `mark ${existing.id} (${describeMark(existing)}) already matches the same traffic`, "delete it first (`netbpf mark delete ID`)");
      }
      const used = new Set(config.rules.map((rule) => rule.id));
      let id = 1;
      while (used.has(id)) id++;
      if (id > maximumMarkRules) throw new UsageError(`add mark on ${this.interfaceName}`, `at most ${maximumMarkRules} marks per interface`);
      (maps[markerMapNames.counters] as BpfMap<number, unknown>).putPerCpu(id, { packets: 0n, bytes: 0n });
      const rule: MarkRule = { id, match, actions, createdAt: new Date().toISOString() };
      return { config: { ...config, rules: [...config.rules, rule] }, result: rule };
    });
  }

  deleteRule(id: number): MarkRule {
    expectInteger("delete mark", "id", id, 1, maximumMarkRules);
    return this.#component.change((config) => {
      const rule = config.rules.find((candidate) => candidate.id === id);
      if (!rule) throw new UsageError(`delete mark on ${this.interfaceName}`, `there is no mark ${id}`, "list them with `netbpf mark list`");
      return { config: { ...config, rules: config.rules.filter((candidate) => candidate.id !== id) }, result: rule };
    }, { mustExist: true });
  }

  rules(): MarkRuleStatus[] {
    const config = this.config();
    if (!config) return [];
    using counters = this.#component.openMap<number, { packets: bigint; bytes: bigint }>(markerMapNames.counters);
    return config.rules.map((rule) => {
      let packets = 0n;
      let bytes = 0n;
      for (const value of counters.getPerCpu(rule.id) ?? []) {
        packets += value.packets;
        bytes += value.bytes;
      }
      return { ...rule, interface: this.interfaceName, packets, bytes };
    });
  }

  uninstall(): void {
    this.#component.uninstall();
  }
}
