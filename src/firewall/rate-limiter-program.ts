/**
 * The rate limiter's tc ingress program: per-source token buckets in an LRU
 * hash (so a flood of spoofed sources evicts old buckets instead of filling
 * memory). Rules are checked in order; the first whose match holds decides
 * with its own bucket for the packet's source address.
 *
 * Buckets count credit in picoseconds: time adds 1000 ps per nanosecond,
 * up to the burst; a packet costs 10^12 / rate ps (packet rates) or
 * bytes × 8·10^12 / rate ps (bit rates). Integer arithmetic only.
 * Two CPUs may update one bucket at the same moment without a lock: at
 * worst a packet is charged once instead of twice (documented tolerance).
 *
 * A SYN guard in cookie mode answers the SYNs its per-source limit lets
 * through with SYN cookies itself (syn-cookie-code.ts) instead of passing
 * them to the listener.
 */
import { Assembler, R0, R1, R2, R3, R4, R6, R7, R8, R10, type AssembledProgram } from "../asm/assembler.js";
import { struct, u32, u64, bytes } from "../core/codec.js";
import { emitMatchCheck, expectProgramRules, FilterSubprograms } from "./match-code.js";
import { expectInteger, expectOneOf } from "../sys/argument-checks.js";
import { emitPacketFields, FieldSlot } from "./packet-fields.js";
import { emitCookieAckCheck, emitCookieAnswer } from "./syn-cookie-code.js";
import type { PortRange, TrafficMatch } from "./traffic-match.js";

export type RateUnit = "packets" | "bits";

export interface ProgramLimitRule {
  slot: number;
  unit: RateUnit;
  /** Packets or bits per second. */
  rate: number;
  /** Packets (packet rates) or bytes (bit rates) a source may send at once. */
  burst: number;
  match: TrafficMatch;
  /** SYN guard: only TCP SYNs (without ACK) to these destination ports. */
  synPorts?: PortRange;
  /** SYN guard with cookies: SYNs within the rate are answered with a cookie SYN-ACK (syn-cookie-code.ts). */
  cookies?: boolean;
}

/** Bucket key: rule slot, address family, source address (IPv4 in the first 4 bytes). */
export const bucketKey = struct({ slot: u32, family: u32, address: bytes(16) });
export const bucketValue = struct({ credit: u64, last: u64, passed: u64, dropped: u64 });
/** Per-CPU per-rule totals. */
export const limitCounter = struct({ passed: u64, dropped: u64, droppedBytes: u64 });

export const limiterMapNames = { buckets: "buckets", counters: "counters", cookies: "cookies" } as const;

const picosecondsPerSecond = 1_000_000_000_000;
const keySlot = -88;
const nowSlot = -96;
const valueSlot = -128;
/** TCX_NEXT and TC_ACT_SHOT. */
const pass = -1;
const drop = 2;

export function costOf(rule: Pick<ProgramLimitRule, "unit" | "rate">): number {
  return rule.unit === "packets" ? Math.floor(picosecondsPerSecond / rule.rate) : Math.floor((8 * picosecondsPerSecond) / rule.rate);
}

export function capacityOf(rule: Pick<ProgramLimitRule, "unit" | "rate" | "burst">): number {
  return costOf(rule) * rule.burst;
}

export function rateLimiterProgram(rules: readonly ProgramLimitRule[]): AssembledProgram {
  expectProgramRules("generate rate limiter program", "rules", rules);
  rules.forEach((rule, index) => {
    expectOneOf("generate rate limiter program", `rules[${index}].unit`, rule.unit, ["packets", "bits"]);
    expectInteger("generate rate limiter program", `rules[${index}].rate`, rule.rate, 1);
    expectInteger("generate rate limiter program", `rules[${index}].burst`, rule.burst, 1);
  });
  const a = new Assembler();
  const subprograms = new FilterSubprograms("tc");
  a.mov64(R6, R1);
  emitPacketFields(a, { hook: "tc", address: "source" });
  a.load("u32", R1, R10, FieldSlot.family).jumpIf(R1, "==", 0, "pass");

  for (const rule of rules) {
    const next = `after_limit_${rule.slot}`;
    const created = `new_bucket_${rule.slot}`;
    const dropped = `drop_${rule.slot}`;
    const cookies = rule.synPorts !== undefined && rule.cookies === true;
    const passed = cookies ? `cookie_syn_${rule.slot}` : "pass";
    if (rule.synPorts) {
      a.load("u32", R1, R10, FieldSlot.protocol).jumpIf(R1, "!=", 6, next)
        .load("u32", R1, R10, FieldSlot.destinationPort)
        .jumpIf(R1, "<", rule.synPorts.first, next).jumpIf(R1, ">", rule.synPorts.last, next);
      // ACK without SYN or RST: maybe the end of a cookie handshake.
      if (cookies) a.load("u32", R1, R10, FieldSlot.tcpFlags).and64(R1, 0x16).jumpIf(R1, "==", 0x10, `cookie_ack_${rule.slot}`);
      a.load("u32", R1, R10, FieldSlot.tcpFlags).and64(R1, 0x12).jumpIf(R1, "!=", 0x02, next);
    }
    emitMatchCheck(a, rule.match, next, subprograms);

    // The bucket key: slot, family, source address (from the parsed LPM key).
    a.store("u32", R10, keySlot, rule.slot)
      .load("u32", R1, R10, FieldSlot.family).store("u32", R10, keySlot + 4, R1);
    for (let i = 0; i < 4; i++) a.load("u32", R1, R10, FieldSlot.key + 4 + 4 * i).store("u32", R10, keySlot + 8 + 4 * i, R1);
    a.call("ktime_get_ns").store("u64", R10, nowSlot, R0);

    // r8 = this packet's cost in ps.
    const cost = costOf(rule);
    const capacity = capacityOf(rule);
    if (rule.unit === "packets") {
      a.loadImmediate64(R8, cost);
    } else {
      a.load("u64", R8, R10, FieldSlot.length).loadImmediate64(R1, cost).mul64(R8, R1);
    }

    a.mov64(R2, R10).add64(R2, keySlot)
      .loadMapFd(R1, limiterMapNames.buckets)
      .call("map_lookup_elem")
      .jumpIf(R0, "==", 0, created)
      .mov64(R7, R0);
    // Refill: credit += (now - last) × 1000, at most the capacity.
    const full = `full_${rule.slot}`;
    const refilled = `refilled_${rule.slot}`;
    a.load("u64", R1, R10, nowSlot)
      .load("u64", R2, R7, 8)
      .store("u64", R7, 8, R1)
      .sub64(R1, R2)
      .jumpIf(R1, "s<", 0, `no_time_${rule.slot}`)
      .loadImmediate64(R3, Math.floor(capacity / 1000))
      .jumpIf(R1, ">", R3, full)
      .mul64(R1, 1000)
      .jump(`add_${rule.slot}`)
      .label(`no_time_${rule.slot}`)
      .mov64(R1, 0)
      .label(`add_${rule.slot}`)
      .load("u64", R2, R7, 0)
      .add64(R2, R1)
      .loadImmediate64(R3, capacity)
      .jumpIf(R2, "<=", R3, refilled)
      .label(full)
      .loadImmediate64(R2, capacity)
      .label(refilled)
      .jumpIf(R2, "<", R8, dropped)
      .sub64(R2, R8)
      .store("u64", R7, 0, R2)
      .load("u64", R1, R7, 16).add64(R1, 1).store("u64", R7, 16, R1)
      .mov64(R4, 0)
      .jump(`count_${rule.slot}`);
    a.label(dropped)
      .store("u64", R7, 0, R2)
      .load("u64", R1, R7, 24).add64(R1, 1).store("u64", R7, 24, R1)
      .mov64(R4, 1)
      .jump(`count_${rule.slot}`);

    // A source seen for the first time starts with a full bucket, minus this packet.
    a.label(created)
      .loadImmediate64(R1, capacity).sub64(R1, R8).store("u64", R10, valueSlot, R1)
      .load("u64", R1, R10, nowSlot).store("u64", R10, valueSlot + 8, R1)
      .store("u64", R10, valueSlot + 16, 1)
      .store("u64", R10, valueSlot + 24, 0)
      .loadMapFd(R1, limiterMapNames.buckets)
      .mov64(R2, R10).add64(R2, keySlot)
      .mov64(R3, R10).add64(R3, valueSlot)
      .mov64(R4, 0)
      .call("map_update_elem")
      .mov64(R4, 0);

    // Per-rule totals; r4 = 1 when dropped. r4 is kept on the stack across the helper call.
    a.label(`count_${rule.slot}`)
      .store("u64", R10, valueSlot, R4)
      .store("u32", R10, FieldSlot.scratch, rule.slot)
      .mov64(R2, R10).add64(R2, FieldSlot.scratch)
      .loadMapFd(R1, limiterMapNames.counters)
      .call("map_lookup_elem")
      .load("u64", R4, R10, valueSlot)
      .jumpIf(R0, "==", 0, `verdict_${rule.slot}`)
      .jumpIf(R4, "!=", 0, `count_drop_${rule.slot}`)
      .load("u64", R1, R0, 0).add64(R1, 1).store("u64", R0, 0, R1)
      .jump(passed)
      .label(`count_drop_${rule.slot}`)
      .load("u64", R1, R0, 8).add64(R1, 1).store("u64", R0, 8, R1)
      .load("u64", R1, R0, 16).load("u64", R2, R10, FieldSlot.length).add64(R1, R2).store("u64", R0, 16, R1)
      .label(`verdict_${rule.slot}`)
      .jumpIf(R4, "!=", 0, "drop")
      .jump(passed);
    if (cookies) {
      emitCookieAnswer(a, rule.slot, passed, "pass");
      emitCookieAckCheck(a, rule.slot, `cookie_ack_${rule.slot}`, next);
    }
    a.label(next);
  }
  a.label("pass").return(pass);
  if (rules.length > 0) a.label("drop").return(drop);
  subprograms.appendTo(a);
  return a.finish();
}
