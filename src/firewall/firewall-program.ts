/**
 * The firewall's eBPF program for one interface and direction, generated
 * from the rule set: XDP at ingress, tc (tcx) at egress.
 *
 * Order of evaluation:
 * 1. the packet's peer address (source at ingress, destination at egress)
 *    is looked up in the direction's prefix map (one for IPv4, one for
 *    IPv6): the longest matching prefix gives a rule slot and an action.
 *    The map is a hash of exact (prefix length, masked address) keys probed
 *    once per prefix length in use, longest first — so the cost depends on
 *    how many different lengths the rules use, not on how many prefixes
 *    there are (an LPM trie's lookup walks a path that deepens as prefixes
 *    are added); firewalls installed before that use an LPM trie (one
 *    lookup, `prefixLengths` not given). An
 *    address-only rule decides there and then (its data is all in the trie,
 *    so adding or removing such rules never changes the program); a rule
 *    with further conditions (protocol, ports, expression) is checked by code;
 * 2. rules without addresses, in the order they were added; the first that
 *    matches decides;
 * 3. the default policy (allow, or block in drop-by-default mode) decides
 *    IP packets; other packets (ARP, …) pass unless a rule matched them.
 * Every decision adds the packet and its bytes to the deciding rule's
 * per-CPU counter (slot 0 is the default policy).
 */
import { Assembler, R0, R1, R2, R3, R4, R6, R7, R8, R10, type AssembledProgram } from "../asm/assembler.js";
import { bytes, struct, u32, u64, u8, u16 } from "../core/codec.js";
import { emitMatchCheck, expectProgramRules, FilterSubprograms } from "./match-code.js";
import { expectObject, expectOneOf } from "../sys/argument-checks.js";
import { emitPacketFields, FieldSlot, type PacketHook } from "./packet-fields.js";
import type { TrafficMatch } from "./traffic-match.js";

export type RuleAction = "block" | "allow";

/** What the trie's value says to do. */
export const TrieAction = { allow: 0, block: 1, conditional: 2 } as const;

/** LPM trie value: the rule's slot, its action, and the prefix length (to tell an exact key from a covering one). */
export const trieValue = struct({ slot: u32, action: u8, prefixLength: u8, reserved: u16 });
export type TrieValue = ReturnType<typeof trieValue.decode>;

/** Per-CPU counter of each rule slot. */
export const ruleCounter = struct({ packets: u64, bytes: u64 });

export const firewallMapNames = { ipv4: "ipv4", ipv6: "ipv6", counters: "counters", dropSources: "drop_sources", audit: "audit" } as const;

/**
 * Drops counted per rule and peer address (LRU hash), while an audit asks
 * for them: the one-element `audit` array holds 1 then. Off, a drop costs
 * one array lookup more; on, one hash update (a flood of spoofed sources
 * only turns the LRU over).
 */
export const dropSourceKey = struct({ slot: u32, family: u32, address: bytes(16) });
export const dropSourceValue = struct({ packets: u64, bytes: u64 });
export const dropSourceEntries = 16384;

export interface ProgramRule {
  slot: number;
  action: RuleAction;
  /** True when the rule's addresses are in the trie (checked there first). */
  hasAddresses: boolean;
  match: TrafficMatch;
}

export interface FirewallProgramOptions {
  hook: PacketHook;
  /** The rules that apply to this direction, in the order they were added. */
  rules: readonly ProgramRule[];
  defaultAction: RuleAction;
  /**
   * The prefix lengths present in each family's map, when the maps are
   * hashes of exact keys (probed longest first); absent for LPM tries.
   */
  prefixLengths?: { ipv4: readonly number[]; ipv6: readonly number[] };
  /** Count drops per rule and peer address in `drop_sources` while `audit` says so. */
  dropSources?: boolean;
}

/** Stack slot of the exact-match key being probed (u32 length + 16 address bytes). */
const probeKey = -88;
/** Stack slots of a drop-source key (24 bytes) and its first value (16 bytes). */
const dropKeySlot = -120;
const dropValueSlot = -136;

/** The bytes of a prefix mask of `length` bits over `bytes` bytes. */
function maskBytes(length: number, bytes: number): Buffer {
  const mask = Buffer.alloc(bytes);
  for (let bit = 0; bit < length; bit++) mask[bit >> 3]! |= 0x80 >> (bit & 7);
  return mask;
}

/** Verdicts: XDP_DROP/XDP_PASS; TC_ACT_SHOT/TCX_NEXT (let later tc programs run). */
export const verdicts: Record<PacketHook, Record<RuleAction, number>> = {
  xdp: { block: 1, allow: 2 },
  tc: { block: 2, allow: -1 },
};

function hasConditions(match: TrafficMatch): boolean {
  return match.protocol !== undefined || match.ports !== undefined || match.expression !== undefined;
}

export function firewallProgram(options: FirewallProgramOptions): AssembledProgram {
  expectObject("generate firewall program", "options", options);
  expectOneOf("generate firewall program", "options.hook", options.hook, ["xdp", "tc"]);
  expectProgramRules("generate firewall program", "options.rules", options.rules);
  expectOneOf("generate firewall program", "options.defaultAction", options.defaultAction, ["block", "allow"]);
  const { hook, rules } = options;
  const a = new Assembler();
  const subprograms = new FilterSubprograms(hook);
  const verdict = "verdict";
  const ruleList = "rules";
  const slot = R7;
  const action = R8;

  a.mov64(R6, R1);
  emitPacketFields(a, { hook, address: hook === "xdp" ? "source" : "destination" });

  // 1. Longest-prefix match on the peer address.
  a.load("u32", R1, R10, FieldSlot.family)
    .jumpIf(R1, "==", 4, "lookup_ipv4")
    .jumpIf(R1, "==", 6, "lookup_ipv6")
    .jump(ruleList);
  // Whether any lookup can hit (the verifier refuses unreachable code).
  let lookups = 0;
  for (const family of ["ipv4", "ipv6"] as const) {
    a.label(`lookup_${family}`);
    const lengths = options.prefixLengths?.[family];
    if (!lengths) {
      lookups++;
      a.mov64(R2, R10).add64(R2, FieldSlot.key)
        .loadMapFd(R1, firewallMapNames[family])
        .call("map_lookup_elem")
        .jumpIf(R0, "==", 0, ruleList)
        .jump("address_hit");
      continue;
    }
    // Exact keys, longest prefix first: the first hit is the longest match.
    const words = family === "ipv4" ? 1 : 4;
    for (const length of [...new Set(lengths)].sort((x, y) => y - x)) {
      lookups++;
      const mask = maskBytes(length, 4 * words);
      a.store("u32", R10, probeKey, length);
      for (let word = 0; word < words; word++) {
        const wordMask = mask.readInt32LE(4 * word);
        if (wordMask === 0) {
          a.store("u32", R10, probeKey + 4 + 4 * word, 0);
        } else {
          a.load("u32", R1, R10, FieldSlot.key + 4 + 4 * word);
          if (wordMask !== -1) a.and32(R1, wordMask);
          a.store("u32", R10, probeKey + 4 + 4 * word, R1);
        }
      }
      a.mov64(R2, R10).add64(R2, probeKey)
        .loadMapFd(R1, firewallMapNames[family])
        .call("map_lookup_elem")
        .jumpIf(R0, "!=", 0, "address_hit");
    }
    a.jump(ruleList);
  }
  if (lookups > 0) {
    a.label("address_hit")
      .load("u32", slot, R0, 0)
      .load("u8", action, R0, 4)
      .jumpIf(action, "!=", TrieAction.conditional, verdict);
    const conditional = rules.filter((rule) => rule.hasAddresses && hasConditions(rule.match));
    for (const rule of conditional) a.jumpIf(slot, "==", rule.slot, `conditions_${rule.slot}`);
    a.jump(ruleList);
    for (const rule of conditional) {
      a.label(`conditions_${rule.slot}`);
      emitMatchCheck(a, rule.match, ruleList, subprograms);
      a.mov64(slot, rule.slot).mov64(action, TrieAction[rule.action]).jump(verdict);
    }
  }

  // 2. Rules without addresses, first match wins.
  a.label(ruleList);
  for (const rule of rules.filter((rule) => !rule.hasAddresses)) {
    const next = `after_rule_${rule.slot}`;
    emitMatchCheck(a, rule.match, next, subprograms);
    a.mov64(slot, rule.slot).mov64(action, TrieAction[rule.action]).jump(verdict);
    a.label(next);
  }

  // 3. Default policy for IP; anything else passes uncounted.
  a.load("u32", R1, R10, FieldSlot.family)
    .jumpIf(R1, "!=", 0, "default_policy")
    .return(verdicts[hook].allow)
    .label("default_policy")
    .mov64(slot, 0).mov64(action, TrieAction[options.defaultAction]);

  // Count the packet for its rule, then act.
  a.label(verdict)
    .store("u32", R10, FieldSlot.scratch, slot)
    .mov64(R2, R10).add64(R2, FieldSlot.scratch)
    .loadMapFd(R1, firewallMapNames.counters)
    .call("map_lookup_elem")
    .jumpIf(R0, "==", 0, "act")
    .load("u64", R1, R0, 0).add64(R1, 1).store("u64", R0, 0, R1)
    .load("u64", R1, R0, 8).load("u64", R2, R10, FieldSlot.length).add64(R1, R2).store("u64", R0, 8, R1)
    .label("act")
    .jumpIf(action, "==", TrieAction.block, "drop")
    .return(verdicts[hook].allow)
    .label("drop");
  if (options.dropSources) emitDropSource(a);
  a.return(verdicts[hook].block);

  subprograms.appendTo(a);
  return a.finish();
}

/** Adds a drop to its (rule, peer address) entry when an audit has switched that on. Keeps R7 (the slot). */
function emitDropSource(a: Assembler): void {
  a.store("u32", R10, FieldSlot.scratch, 0)
    .mov64(R2, R10).add64(R2, FieldSlot.scratch)
    .loadMapFd(R1, firewallMapNames.audit)
    .call("map_lookup_elem")
    .jumpIf(R0, "==", 0, "drop_counted")
    .load("u32", R1, R0, 0)
    .jumpIf(R1, "==", 0, "drop_counted");
  a.store("u32", R10, dropKeySlot, R7)
    .load("u32", R1, R10, FieldSlot.family).store("u32", R10, dropKeySlot + 4, R1);
  // The peer address follows the prefix length in the LPM key (zeros past an IPv4 address).
  for (let word = 0; word < 4; word++) a.load("u32", R1, R10, FieldSlot.key + 4 + 4 * word).store("u32", R10, dropKeySlot + 8 + 4 * word, R1);
  a.mov64(R2, R10).add64(R2, dropKeySlot)
    .loadMapFd(R1, firewallMapNames.dropSources)
    .call("map_lookup_elem")
    .jumpIf(R0, "==", 0, "drop_source_new")
    .mov64(R1, 1).atomic("u64", "add", R0, 0, R1)
    .load("u64", R1, R10, FieldSlot.length).atomic("u64", "add", R0, 8, R1)
    .jump("drop_counted")
    .label("drop_source_new")
    .store("u64", R10, dropValueSlot, 1)
    .load("u64", R1, R10, FieldSlot.length).store("u64", R10, dropValueSlot + 8, R1)
    .mov64(R2, R10).add64(R2, dropKeySlot)
    .mov64(R3, R10).add64(R3, dropValueSlot)
    .mov64(R4, 0)
    .loadMapFd(R1, firewallMapNames.dropSources)
    .call("map_update_elem")
    .label("drop_counted");
}
