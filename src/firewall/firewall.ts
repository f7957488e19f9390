/**
 * Firewall: block and allow rules on one network interface, kept in the
 * netbpf state folder (component "firewall/<interface>") so they hold after
 * the command exits, after kill -9, and across runs.
 *
 * Ingress runs an XDP program (native where the driver has XDP, else generic),
 * egress a tcx program. Addresses and CIDR prefixes live in prefix maps (one
 * per family and direction): hashes of exact (length, masked address) keys
 * that the program probes once per prefix length in use, so the cost of a
 * lookup does not depend on how many prefixes are installed (firewalls
 * installed by earlier versions keep their LPM tries, which work the same but
 * get slower as they fill). See firewall-program.ts for the evaluation order.
 */
import { statSync } from "node:fs";
import { BpfMap } from "../core/map.js";
import type { Program } from "../core/program.js";
import { MapFlag, MapType, UpdateFlag } from "../sys/bpf-constants.js";
import { argumentError, expectArray, expectBoolean, expectInteger, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";
import { NetbpfError, UsageError } from "../sys/errors.js";
import { interfaceIndex } from "../sys/socket.js";
import { StateStore, type StateAttachment, type StateComponent } from "../state/state-store.js";
import {
  expectAddressPrefix, formatAddressPrefix, ipv4PrefixKey, ipv6PrefixKey, parseAddressPrefix, prefixKey, type AddressPrefix,
} from "./address-prefix.js";
import {
  dropSourceEntries, dropSourceKey, dropSourceValue, firewallMapNames, firewallProgram, ruleCounter, TrieAction, trieValue, type ProgramRule, type RuleAction, type TrieValue,
} from "./firewall-program.js";
import { formatIpv4, formatIpv6 } from "../pcap/address-text.js";
import { attachAndPin, loadGenerated, replacePinnedProgram, type Hook } from "./hook-attachment.js";
import { storeOption } from "./hooked-component.js";
import {
  describeTrafficMatch, trafficMatchKey, trafficMatchOf, type PortRange, type RuleDirection, type TrafficMatch,
} from "./traffic-match.js";
import { u32, type LpmKey } from "../core/codec.js";

export type { RuleAction, RuleDirection };

/** A rule as callers give it. */
export interface FirewallRuleInput {
  action: RuleAction;
  /** Peer addresses or CIDR prefixes (source at ingress, destination at egress). */
  addresses?: readonly (string | AddressPrefix)[];
  /** Default "both". */
  direction?: RuleDirection;
  /** "tcp", "udp", "icmp", "icmp6", a name or a number. */
  protocol?: string | number;
  /** A port or range ("8000-8100"), matched as source or destination port. */
  ports?: string | number | PortRange;
  /** Any pcap-filter expression. */
  expression?: string;
  /** Free text shown by `netbpf rules` (e.g. the blocklist's file name). */
  comment?: string;
}

/** A rule as stored in the manifest. */
export interface StoredRule {
  id: number;
  action: RuleAction;
  direction: RuleDirection;
  match: TrafficMatch;
  /** How many prefixes the rule has in the tries (0: not an address rule). */
  addressCount: number;
  /** The first few prefixes, for display (all of them live in the tries). */
  addressSample: string[];
  /** The distinct prefix lengths of the rule's prefixes per family (the program probes these). */
  prefixLengths?: { ipv4: number[]; ipv6: number[] };
  comment?: string;
  createdAt: string;
}

export interface FirewallRuleStatus extends StoredRule {
  interface: string;
  packets: bigint;
  bytes: bigint;
}

/** Drops of one rule from one peer address (counted while an audit asks; see trackDropSources). */
export interface FirewallDropSource {
  interface: string;
  /** The rule's id (0: the default policy). */
  rule: number;
  /** The packet's peer address (source at ingress, destination at egress); "" for a packet that is not IP. */
  address: string;
  packets: bigint;
  bytes: bigint;
}

export interface FirewallPolicy {
  ingress: RuleAction;
  egress: RuleAction;
}

export interface FirewallConfig {
  interface: string;
  interfaceIndex: number;
  policy: FirewallPolicy;
  rules: StoredRule[];
}

export const firewallKind = "firewall";
/** Rule ids are counter slots 1..maximumRules; slot 0 counts the default policy. */
export const maximumRules = 1024;
/** Prefixes per trie (tries allocate per entry; this is only a ceiling). */
export const maximumPrefixes = 1 << 20;
const sampleSize = 8;

type Direction = "ingress" | "egress";
const directions: Direction[] = ["ingress", "egress"];
const hookOf: Record<Direction, Hook> = { ingress: "xdp", egress: "tc egress" };
const linkPin: Record<Direction, string> = { ingress: "ingress_link", egress: "egress_link" };
const programName: Record<Direction, string> = { ingress: "nb_fw_ingress", egress: "nb_fw_egress" };
const triePin = (family: 4 | 6, direction: Direction) => `ipv${family}_${direction}`;
const countersPin = "counters";
const dropSourcesPin = "drop_sources";
const auditPin = "audit";

function appliesTo(rule: { direction: RuleDirection }, direction: Direction): boolean {
  return rule.direction === "both" || rule.direction === direction;
}

function hasConditions(match: TrafficMatch): boolean {
  return match.protocol !== undefined || match.ports !== undefined || match.expression !== undefined;
}

interface Tries {
  [key: string]: BpfMap<LpmKey, TrieValue>;
}

/** A rule checked and ready to install. */
interface PreparedRule {
  stored: StoredRule;
  prefixes: AddressPrefix[];
}

const addOperation = "add firewall rule";

/** Checks one rule a caller gave (named `name` in errors); `where` names it in address errors ("rule 3"). */
function normaliseInput(input: FirewallRuleInput, name: string, where: string): { direction: RuleDirection; match: TrafficMatch; prefixes: AddressPrefix[] } {
  expectObject(addOperation, name, input);
  expectOneOf(addOperation, `${name}.action`, input.action, ["block", "allow"]);
  const direction = input.direction === undefined ? "both" : expectOneOf(addOperation, `${name}.direction`, input.direction, ["ingress", "egress", "both"]);
  const addresses = expectArray<unknown>(addOperation, `${name}.addresses`, input.addresses, true);
  const prefixes = addresses.map((address, index) => {
    if (typeof address === "string") return parseAddressPrefix(address, where);
    if (typeof address !== "object" || address === null) throw argumentError(addOperation, `${name}.addresses[${index}]`, 'an address or prefix ("10.0.0.0/8") or an AddressPrefix', address);
    return expectAddressPrefix(addOperation, `${name}.addresses[${index}]`, address);
  });
  if (input.comment !== undefined) expectString(addOperation, `${name}.comment`, input.comment);
  const match = trafficMatchOf(addOperation, name, input);
  if (prefixes.length === 0 && !hasConditions(match)) {
    throw new UsageError(addOperation, `${name} needs an address, a protocol, a port or a filter expression`, "to drop everything not allowed use the default policy (`netbpf rules policy drop`)");
  }
  return { direction, match, prefixes };
}

/**
 * The firewall of one interface. Open it with Firewall.open(interface); the
 * first rule installs the programs. Every change holds the component's lock
 * and is all or nothing.
 */
export class Firewall {
  readonly interfaceName: string;
  readonly component: StateComponent;

  private constructor(interfaceName: string, component: StateComponent) {
    this.interfaceName = expectString("open firewall", "interfaceName", interfaceName);
    expectObject("open firewall", "component", component);
    this.component = component;
  }

  /** The firewall of `interfaceName` (which must exist in this network namespace). */
  static open(interfaceName: string, options: { store?: StateStore } = {}): Firewall {
    interfaceIndex(expectString("open firewall", "interfaceName", interfaceName), "open firewall");
    const store = storeOption("open firewall", options);
    return new Firewall(interfaceName, store.component(firewallKind, interfaceName));
  }

  /** Every interface with an installed firewall. */
  static installed(options: { store?: StateStore } = {}): Firewall[] {
    const store = storeOption("list firewalls", options);
    return store.components(firewallKind).map((component) => new Firewall(component.name, component));
  }

  /** The installed configuration, or undefined when nothing is installed. */
  config(): FirewallConfig | undefined {
    if (!this.component.exists()) return undefined;
    return this.component.readManifest<FirewallConfig>()?.config;
  }

  get installed(): boolean {
    return this.config() !== undefined;
  }

  /** Adds one rule; returns it with its id. */
  add(input: FirewallRuleInput): StoredRule {
    return this.#addNormalised([{ input, ...normaliseInput(input, "input", "address") }])[0]!;
  }

  block(input: Omit<FirewallRuleInput, "action">): StoredRule {
    return this.add({ ...expectObject(addOperation, "input", input), action: "block" });
  }

  allow(input: Omit<FirewallRuleInput, "action">): StoredRule {
    return this.add({ ...expectObject(addOperation, "input", input), action: "allow" });
  }

  /** Adds several rules in one change: all are installed or none. */
  addRules(inputs: readonly FirewallRuleInput[]): StoredRule[] {
    expectArray("add firewall rules", "inputs", inputs);
    return this.#addNormalised(inputs.map((input, index) => ({ input, ...normaliseInput(input, `inputs[${index}]`, inputs.length > 1 ? `rule ${index + 1}` : "address") })));
  }

  #addNormalised(normalised: (ReturnType<typeof normaliseInput> & { input: FirewallRuleInput })[]): StoredRule[] {
    return this.change((state) => {
      const prepared = this.prepare(state.config, normalised);
      const config: FirewallConfig = { ...state.config, rules: [...state.config.rules, ...prepared.map((rule) => rule.stored)] };
      this.apply(state, config, { insert: prepared });
      return prepared.map((rule) => rule.stored);
    });
  }

  /** Removes a rule by id; throws a UsageError when there is none. */
  deleteRule(id: number): StoredRule {
    expectInteger("delete firewall rule", "id", id, 1, maximumRules);
    return this.change((state) => {
      const rule = state.config.rules.find((candidate) => candidate.id === id);
      if (!rule) throw new UsageError("delete firewall rule", `${this.interfaceName} has no rule ${id}`, "list the rules with `netbpf rules`");
      const config: FirewallConfig = { ...state.config, rules: state.config.rules.filter((candidate) => candidate.id !== id) };
      this.apply(state, config, { removeSlots: [id] });
      return rule;
    }, { mustExist: true });
  }

  /** Removes every rule (the default policy stays). */
  flush(): number {
    return this.change((state) => {
      const count = state.config.rules.length;
      this.apply(state, { ...state.config, rules: [] }, { removeSlots: state.config.rules.map((rule) => rule.id) });
      return count;
    }, { mustExist: true });
  }

  /** Sets what happens to IP packets no rule decides: "allow" (default) or "block" (drop by default, with allow rules). */
  setPolicy(action: RuleAction, direction: RuleDirection = "ingress"): FirewallPolicy {
    expectOneOf("set firewall policy", "action", action, ["allow", "block"]);
    expectOneOf("set firewall policy", "direction", direction, ["ingress", "egress", "both"]);
    return this.change((state) => {
      const policy = { ...state.config.policy };
      for (const each of directions) if (direction === "both" || direction === each) policy[each] = action;
      this.apply(state, { ...state.config, policy }, {});
      return policy;
    });
  }

  /** The rules with their packet and byte counters. */
  rules(): FirewallRuleStatus[] {
    const config = this.config();
    if (!config) return [];
    using counters = BpfMap.openPinned(this.component.pinPath(countersPin), { key: u32, value: ruleCounter });
    return config.rules.map((rule) => ({ ...rule, interface: this.interfaceName, ...sumCounter(counters, rule.id) }));
  }

  /**
   * Switches counting drops per rule and peer address on or off (an audit
   * recorder does while it runs). Returns false when the installed programs
   * predate it (any rule change installs programs that can).
   */
  trackDropSources(on: boolean): boolean {
    expectBoolean("track firewall drops", "on", on);
    if (!this.installed || !existsPin(this.component.pinPath(auditPin))) return false;
    using audit = BpfMap.openPinned(this.component.pinPath(auditPin), { key: u32, value: u32 });
    audit.put(0, on ? 1 : 0);
    return true;
  }

  /** Drops per rule and peer address counted so far (empty unless trackDropSources(true) was called). */
  dropSources(): FirewallDropSource[] {
    if (!this.installed || !existsPin(this.component.pinPath(dropSourcesPin))) return [];
    using sources = BpfMap.openPinned(this.component.pinPath(dropSourcesPin), { key: dropSourceKey, value: dropSourceValue });
    const out: FirewallDropSource[] = [];
    for (const [key, value] of sources.lookupBatch()) {
      const { packets, bytes } = value as { packets: bigint; bytes: bigint };
      const address = key.family === 4 ? formatIpv4(key.address.subarray(0, 4)) : key.family === 6 ? formatIpv6(key.address) : "";
      out.push({ interface: this.interfaceName, rule: key.slot, address, packets, bytes });
    }
    return out;
  }

  /** Packets and bytes the default policy decided. */
  policyCounter(): { packets: bigint; bytes: bigint } {
    if (!this.installed) return { packets: 0n, bytes: 0n };
    using counters = BpfMap.openPinned(this.component.pinPath(countersPin), { key: u32, value: ruleCounter });
    return sumCounter(counters, 0);
  }

  /** Every prefix of a rule, read from the tries. */
  addresses(id: number): string[] {
    expectInteger("list rule addresses", "id", id, 1, maximumRules);
    const config = this.config();
    const rule = config?.rules.find((candidate) => candidate.id === id);
    if (!rule) throw new UsageError("list rule addresses", `${this.interfaceName} has no rule ${id}`);
    const direction: Direction = rule.direction === "egress" ? "egress" : "ingress";
    const out: string[] = [];
    for (const family of [4, 6] as const) {
      using trie = this.openTrie(family, direction);
      for (const [key, value] of trie.entries()) {
        if ((value as TrieValue).slot === id) out.push(formatAddressPrefix({ family, address: key.address, prefixLength: key.prefixLength }));
      }
    }
    return out;
  }

  /** Detaches everything and removes the component. */
  uninstall(): void {
    using _lock = this.component.lock({ wait: true });
    this.component.remove();
  }

  // ---- internals -------------------------------------------------------------

  /** The per-source drop map and its on/off switch: opened when pinned, else created and pinned. */
  private openDropMaps(): DropMaps {
    const open = <K, V>(pin: string, create: () => BpfMap<K, V>, codecs: { key: any; value: any }): BpfMap<K, V> => {
      if (existsPin(this.component.pinPath(pin))) return BpfMap.openPinned(this.component.pinPath(pin), codecs);
      const map = create();
      try {
        this.component.pin(pin, map);
      } catch (error) {
        map.close();
        throw error;
      }
      return map;
    };
    const dropSources = open(dropSourcesPin, () => BpfMap.create({ name: "nb_fw_drop_src", type: MapType.LruHash, key: dropSourceKey, value: dropSourceValue, maxEntries: dropSourceEntries }), { key: dropSourceKey, value: dropSourceValue });
    try {
      const audit = open(auditPin, () => BpfMap.create({ name: "nb_fw_audit", type: MapType.Array, key: u32, value: u32, maxEntries: 1 }), { key: u32, value: u32 });
      return { dropSources, audit };
    } catch (error) {
      dropSources.close();
      throw error;
    }
  }

  private openTrie(family: 4 | 6, direction: Direction): BpfMap<LpmKey, TrieValue> {
    return BpfMap.openPinned(this.component.pinPath(triePin(family, direction)), { key: family === 4 ? ipv4PrefixKey : ipv6PrefixKey, value: trieValue });
  }

  /**
   * Runs a change under the component's lock with its maps open; installs
   * the programs first when nothing is installed, and removes everything
   * again when that first change fails.
   */
  private change<T>(action: (state: OpenState) => T, options: { mustExist?: boolean } = {}): T {
    const existedBefore = this.component.exists();
    const lock = this.component.lock({ wait: true });
    let fresh = false;
    let state: OpenState | undefined;
    try {
      const manifest = this.component.readManifest<FirewallConfig>();
      if (!manifest) {
        if (options.mustExist) throw new UsageError(`change firewall on ${this.interfaceName}`, "no firewall is installed there", "add a rule with `netbpf block` or `netbpf allow`");
        fresh = true;
        state = this.createState();
      } else {
        state = this.openState(manifest.config, manifest.attachments);
      }
      return action(state);
    } catch (error) {
      if (fresh || !existedBefore) {
        state?.close();
        state = undefined;
        try {
          this.component.remove();
        } catch {
          // Leave what could not be removed for `netbpf reset`.
        }
      }
      throw error;
    } finally {
      state?.close();
      lock.release();
    }
  }

  private createState(): OpenState {
    const ifindex = interfaceIndex(this.interfaceName, "install firewall");
    const tries: Tries = {};
    const maps: BpfMap<any, any>[] = [];
    try {
      for (const direction of directions) {
        for (const family of [4, 6] as const) {
          const trie = BpfMap.create({
            name: `nb_fw_v${family}_${direction.slice(0, 3)}`, type: MapType.Hash, flags: MapFlag.NoPrealloc,
            key: family === 4 ? ipv4PrefixKey : ipv6PrefixKey, value: trieValue, maxEntries: maximumPrefixes,
          });
          maps.push(trie);
          tries[triePin(family, direction)] = trie;
        }
      }
      const counters = BpfMap.create({ name: "nb_fw_counters", type: MapType.PercpuArray, key: u32, value: ruleCounter, maxEntries: maximumRules + 1 });
      maps.push(counters);
      for (const [name, map] of Object.entries(tries)) this.component.pin(name, map);
      this.component.pin(countersPin, counters);
      const drops = this.openDropMaps();
      maps.push(drops.dropSources, drops.audit);
      const config: FirewallConfig = { interface: this.interfaceName, interfaceIndex: ifindex, policy: { ingress: "allow", egress: "allow" }, rules: [] };
      return new OpenState(config, tries, counters, drops, [], false);
    } catch (error) {
      for (const map of maps) map.close();
      throw error;
    }
  }

  private openState(config: FirewallConfig, attachments: StateAttachment[]): OpenState {
    const tries: Tries = {};
    const opened: BpfMap<any, any>[] = [];
    try {
      for (const direction of directions) {
        for (const family of [4, 6] as const) {
          const trie = this.openTrie(family, direction);
          opened.push(trie);
          tries[triePin(family, direction)] = trie;
        }
      }
      const counters = BpfMap.openPinned(this.component.pinPath(countersPin), { key: u32, value: ruleCounter });
      opened.push(counters);
      // Firewalls installed before drops were counted per source get the maps now, used from the next program swap.
      const drops = this.openDropMaps();
      return new OpenState(config, tries, counters, drops, attachments, true);
    } catch (error) {
      for (const map of opened) map.close();
      throw new NetbpfError(`open firewall on ${this.interfaceName}`, `its state in ${this.component.path} is damaged (${(error as Error).message})`,
        "remove it with `netbpf reset` and add the rules again", { cause: error });
    }
  }

  /** Checks new rules against each other and the installed ones; gives them ids. */
  private prepare(config: FirewallConfig, inputs: (ReturnType<typeof normaliseInput> & { input: FirewallRuleInput })[]): PreparedRule[] {
    const used = new Set(config.rules.map((rule) => rule.id));
    const free: number[] = [];
    for (let slot = 1; slot <= maximumRules && free.length < inputs.length; slot++) if (!used.has(slot)) free.push(slot);
    if (free.length < inputs.length) {
      throw new UsageError("add firewall rule", `${this.interfaceName} would have more than ${maximumRules} rules`, "put many addresses in one rule (`netbpf block --file LIST`)");
    }
    const seenPrefixes = new Map<string, number>();
    const prepared: PreparedRule[] = [];
    inputs.forEach((entry, index) => {
      const id = free[index]!;
      // One rule's duplicate prefixes collapse to one (blocklists often repeat lines).
      const unique = new Map<string, AddressPrefix>();
      for (const prefix of entry.prefixes) unique.set(`${prefix.family}:${formatAddressPrefix(prefix)}`, prefix);
      for (const direction of directions) {
        if (!appliesTo(entry, direction)) continue;
        for (const [text, prefix] of unique) {
          const key = `${direction}:${text}`;
          const other = seenPrefixes.get(key);
          if (other !== undefined && other !== id) throw this.conflict(`${formatAddressPrefix(prefix)} appears in two of the new rules`);
          seenPrefixes.set(key, id);
        }
      }
      const matchKey = trafficMatchKey(entry.match);
      if (unique.size === 0) {
        for (const existing of [...config.rules, ...prepared.map((rule) => rule.stored)]) {
          if (existing.addressCount === 0 && trafficMatchKey(existing.match) === matchKey && (existing.direction === "both" || entry.direction === "both" || existing.direction === entry.direction)) {
            throw this.conflict(`rule ${existing.id} (${existing.action} ${describeTrafficMatch(existing.match).join(" ")}) already matches the same traffic`);
          }
        }
      }
      const prefixes = [...unique.values()];
      prepared.push({
        prefixes,
        stored: {
          id, action: entry.input.action, direction: entry.direction, match: entry.match,
          addressCount: prefixes.length, addressSample: prefixes.slice(0, sampleSize).map(formatAddressPrefix),
          ...(prefixes.length ? { prefixLengths: distinctLengths(prefixes) } : {}),
          ...(entry.input.comment !== undefined ? { comment: entry.input.comment } : {}),
          createdAt: new Date().toISOString(),
        },
      });
    });
    return prepared;
  }

  private conflict(message: string): UsageError {
    return new UsageError(`add firewall rule on ${this.interfaceName}`, message, "delete the existing rule first (`netbpf rules delete ID`)");
  }

  /**
   * Makes the kernel state match `config`. Order keeps every moment
   * consistent: new programs are loaded (verified) before anything changes;
   * trie entries of removed rules go before the programs that know them;
   * programs that know new conditional rules go before those rules' entries.
   */
  private apply(state: OpenState, config: FirewallConfig, change: { insert?: PreparedRule[]; removeSlots?: number[] }): void {
    const insert = change.insert ?? [];
    // Refuse prefixes that are already installed (exact same prefix and direction).
    // The installed keys are read once per trie (an exact-match test per new prefix would cost a system call each).
    const installed = new Map<string, Map<string, TrieValue>>();
    const installedKeys = (family: 4 | 6, direction: Direction): Map<string, TrieValue> => {
      const name = triePin(family, direction);
      let keys = installed.get(name);
      if (!keys) {
        keys = new Map();
        for (const [key, value] of state.tries[name]!.entries()) keys.set(`${key.prefixLength}/${key.address.toString("hex")}`, value as TrieValue);
        installed.set(name, keys);
      }
      return keys;
    };
    for (const rule of insert) {
      for (const direction of directions) {
        if (!appliesTo(rule.stored, direction)) continue;
        for (const prefix of rule.prefixes) {
          const existing = installedKeys(prefix.family, direction).get(`${prefix.prefixLength}/${prefix.address.toString("hex")}`);
          if (existing) {
            const owner = state.config.rules.find((candidate) => candidate.id === existing.slot);
            throw this.conflict(`${formatAddressPrefix(prefix)} is already in rule ${existing.slot}${owner ? ` (${owner.action} ${owner.direction})` : ""}`);
          }
        }
      }
    }
    const programs = this.loadPrograms(state, config);
    try {
      if (change.removeSlots?.length) this.deleteTrieEntries(state, new Set(change.removeSlots));
      for (const rule of insert) state.counters.putPerCpu(rule.stored.id, { packets: 0n, bytes: 0n });
      const attachments = this.installPrograms(state, programs);
      try {
        this.insertTrieEntries(state, insert);
      } catch (error) {
        // Back to the rules as they were: the old programs, no new entries.
        this.deleteTrieEntries(state, new Set(insert.map((rule) => rule.stored.id)));
        if (state.installed) {
          const previous = this.loadPrograms(state, state.config);
          try {
            this.installPrograms(state, previous);
          } finally {
            for (const program of Object.values(previous)) program.close();
          }
        }
        throw error;
      }
      this.component.writeManifest<FirewallConfig>({ summary: summarise(config), attachments, config });
      state.config = config;
    } finally {
      for (const program of Object.values(programs)) program.close();
    }
  }

  private loadPrograms(state: OpenState, config: FirewallConfig): Record<Direction, Program> {
    const out: Partial<Record<Direction, Program>> = {};
    try {
      for (const direction of directions) {
        const rules: ProgramRule[] = config.rules.filter((rule) => appliesTo(rule, direction))
          .map((rule) => ({ slot: rule.id, action: rule.action, hasAddresses: rule.addressCount > 0, match: rule.match }));
        const hashed = state.tries[triePin(4, direction)]!.type === MapType.Hash;
        const prefixLengths = hashed ? lengthsInUse(config.rules.filter((rule) => appliesTo(rule, direction))) : undefined;
        const program = firewallProgram({ hook: direction === "ingress" ? "xdp" : "tc", rules, defaultAction: config.policy[direction], dropSources: true, ...(prefixLengths ? { prefixLengths } : {}) });
        out[direction] = loadGenerated(programName[direction], hookOf[direction], program, {
          [firewallMapNames.ipv4]: state.tries[triePin(4, direction)]!,
          [firewallMapNames.ipv6]: state.tries[triePin(6, direction)]!,
          [firewallMapNames.counters]: state.counters,
          [firewallMapNames.dropSources]: state.drops.dropSources,
          [firewallMapNames.audit]: state.drops.audit,
        });
      }
      return out as Record<Direction, Program>;
    } catch (error) {
      for (const program of Object.values(out)) program.close();
      throw error;
    }
  }

  /** Attaches (first time) or swaps in (afterwards) the programs; returns the attachments. */
  private installPrograms(state: OpenState, programs: Record<Direction, Program>): StateAttachment[] {
    if (state.installed) {
      for (const direction of directions) replacePinnedProgram(this.component, linkPin[direction], programs[direction]);
      return state.attachments;
    }
    const attachments: StateAttachment[] = [];
    for (const direction of directions) attachments.push(attachAndPin(this.component, linkPin[direction], programs[direction], hookOf[direction], this.interfaceName));
    state.attachments = attachments;
    state.installed = true;
    return attachments;
  }

  private insertTrieEntries(state: OpenState, rules: PreparedRule[]): void {
    for (const rule of rules) {
      const action = hasConditions(rule.stored.match) ? TrieAction.conditional : TrieAction[rule.stored.action];
      for (const direction of directions) {
        if (!appliesTo(rule.stored, direction)) continue;
        for (const family of [4, 6] as const) {
          const entries: [LpmKey, TrieValue][] = rule.prefixes.filter((prefix) => prefix.family === family)
            .map((prefix) => [prefixKey(prefix), { slot: rule.stored.id, action, prefixLength: prefix.prefixLength, reserved: 0 }]);
          if (entries.length > 0) state.tries[triePin(family, direction)]!.updateBatch(entries, { flags: UpdateFlag.NoExist });
        }
      }
    }
  }

  private deleteTrieEntries(state: OpenState, slots: Set<number>): void {
    if (slots.size === 0) return;
    for (const trie of Object.values(state.tries)) {
      const doomed: LpmKey[] = [];
      for (const [key, value] of trie.entries()) if (slots.has((value as TrieValue).slot)) doomed.push(key);
      for (const key of doomed) trie.delete(key);
    }
  }
}

class OpenState {
  constructor(
    public config: FirewallConfig,
    readonly tries: Tries,
    readonly counters: BpfMap<number, { packets: bigint; bytes: bigint }>,
    readonly drops: DropMaps,
    public attachments: StateAttachment[],
    public installed: boolean,
  ) {}

  close(): void {
    for (const trie of Object.values(this.tries)) trie.close();
    this.counters.close();
    this.drops.dropSources.close();
    this.drops.audit.close();
  }
}

interface DropMaps {
  dropSources: BpfMap<any, any>;
  audit: BpfMap<any, any>;
}

function existsPin(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function distinctLengths(prefixes: readonly AddressPrefix[]): { ipv4: number[]; ipv6: number[] } {
  const of = (family: 4 | 6) => [...new Set(prefixes.filter((prefix) => prefix.family === family).map((prefix) => prefix.prefixLength))].sort((x, y) => y - x);
  return { ipv4: of(4), ipv6: of(6) };
}

/** The prefix lengths the program must probe for these rules (all lengths for a rule that did not record its own). */
function lengthsInUse(rules: readonly StoredRule[]): { ipv4: number[]; ipv6: number[] } {
  const ipv4 = new Set<number>();
  const ipv6 = new Set<number>();
  for (const rule of rules) {
    if (rule.addressCount === 0) continue;
    const lengths = rule.prefixLengths ?? { ipv4: Array.from({ length: 33 }, (_, i) => i), ipv6: Array.from({ length: 129 }, (_, i) => i) };
    lengths.ipv4.forEach((length) => ipv4.add(length));
    lengths.ipv6.forEach((length) => ipv6.add(length));
  }
  return { ipv4: [...ipv4].sort((x, y) => y - x), ipv6: [...ipv6].sort((x, y) => y - x) };
}

function sumCounter(counters: BpfMap<number, { packets: bigint; bytes: bigint }>, slot: number): { packets: bigint; bytes: bigint } {
  const values = counters.getPerCpu(slot) ?? [];
  let packets = 0n;
  let bytes = 0n;
  for (const value of values) {
    packets += value.packets;
    bytes += value.bytes;
  }
  return { packets, bytes };
}

function summarise(config: FirewallConfig): string {
  const blocks = config.rules.filter((rule) => rule.action === "block").length;
  const allows = config.rules.length - blocks;
  const prefixes = config.rules.reduce((total, rule) => total + rule.addressCount, 0);
  const policy = config.policy.ingress === "block" || config.policy.egress === "block"
    ? `, drop by default (${directions.filter((d) => config.policy[d] === "block").join(", ")})` : "";
  return `${config.rules.length} rules (${blocks} block, ${allows} allow, ${prefixes} prefixes)${policy}`;
}

/** Text for a rule's match, as `netbpf rules` shows it. */
export function describeRule(rule: StoredRule): string {
  expectObject("describe rule", "rule", rule);
  expectInteger("describe rule", "rule.addressCount", rule.addressCount, 0);
  expectArray("describe rule", "rule.addressSample", rule.addressSample);
  expectObject("describe rule", "rule.match", rule.match);
  const parts: string[] = [];
  if (rule.addressCount > 0) {
    parts.push(rule.addressCount <= 3 ? rule.addressSample.slice(0, 3).join(",") : `${rule.addressSample.slice(0, 2).join(",")},… (${rule.addressCount} prefixes)`);
  }
  parts.push(...describeTrafficMatch(rule.match));
  return parts.join(" ");
}
