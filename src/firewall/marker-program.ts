/**
 * The marker's tc egress program: the first rule whose match holds sets the
 * packet's skb priority, fwmark and/or DSCP, and counts it. DSCP rewrites
 * keep the ECN bits; IPv4 gets its header checksum updated incrementally
 * (bpf_l3_csum_replace over the 16-bit word holding the TOS byte); IPv6 has
 * no header checksum. The program always lets the packet go on (TCX_NEXT),
 * so the qdisc that follows sees the marks.
 */
import { Assembler, R0, R1, R2, R3, R4, R5, R6, R10, type AssembledProgram } from "../asm/assembler.js";
import { emitMatchCheck, expectProgramRules, FilterSubprograms } from "./match-code.js";
import { expectObject } from "../sys/argument-checks.js";
import { emitPacketFields, FieldSlot } from "./packet-fields.js";
import type { TrafficMatch } from "./traffic-match.js";

export interface MarkActions {
  /** skb->priority (tc's "major:minor" class id as a number). */
  priority?: number;
  /** skb->mark (fwmark). */
  fwmark?: number;
  /** DSCP code point 0-63. */
  dscp?: number;
}

export interface ProgramMarkRule {
  slot: number;
  match: TrafficMatch;
  actions: MarkActions;
}

export const markerMapNames = { counters: "counters" } as const;

/** __sk_buff offsets (uapi). */
const skbMark = 8;
const skbPriority = 32;
const skbData = 76;
const skbDataEnd = 80;
const ipOffset = 14;
const byteSlot = -136;
const oldWordSlot = -144;
const newWordSlot = -152;
const next = -1;

function emitDscp(a: Assembler, dscp: number, done: string): void {
  const ipv6 = a.newLabel("dscp_ipv6_");
  a.load("u32", R1, R10, FieldSlot.family)
    .jumpIf(R1, "==", 6, ipv6)
    .jumpIf(R1, "!=", 4, done)
    // IPv4: TOS is byte 1 of the header; the checksum covers the 16-bit word of bytes 0-1.
    .load("u32", R2, R6, skbData).load("u32", R3, R6, skbDataEnd)
    .mov64(R4, R2).add64(R4, ipOffset + 20).jumpIf(R4, ">", R3, done)
    .load("u16", R4, R2, ipOffset).store("u64", R10, oldWordSlot, R4)
    .load("u8", R5, R2, ipOffset + 1).mov64(R1, R5).and64(R1, 0x03).or64(R1, dscp << 2)
    .jumpIf(R1, "==", R5, done)
    .store("u8", R10, byteSlot, R1)
    // The word as it sits in memory: byte 0 low, byte 1 (TOS) high on little-endian loads.
    .leftShift64(R1, 8).and64(R4, 0xff).or64(R4, R1).store("u64", R10, newWordSlot, R4)
    .mov64(R1, R6).mov64(R2, ipOffset + 1).mov64(R3, R10).add64(R3, byteSlot).mov64(R4, 1).mov64(R5, 0)
    .call("skb_store_bytes")
    .jumpIf(R0, "!=", 0, done)
    .mov64(R1, R6).mov64(R2, ipOffset + 10)
    .load("u64", R3, R10, oldWordSlot).load("u64", R4, R10, newWordSlot).mov64(R5, 2)
    .call("l3_csum_replace")
    .jump(done);
  // IPv6: traffic class = low 4 bits of byte 0 and high 4 bits of byte 1.
  a.label(ipv6)
    .load("u32", R2, R6, skbData).load("u32", R3, R6, skbDataEnd)
    .mov64(R4, R2).add64(R4, ipOffset + 40).jumpIf(R4, ">", R3, done)
    .load("u8", R4, R2, ipOffset).load("u8", R5, R2, ipOffset + 1)
    // ECN bits are bits 4-5 of byte 1.
    .mov64(R1, R5).and64(R1, 0x30).rightShift64(R1, 4).or64(R1, dscp << 2)
    .mov64(R3, R1).rightShift64(R3, 4).and64(R4, 0xf0).or64(R4, R3)
    .and64(R1, 0x0f).leftShift64(R1, 4).and64(R5, 0x0f).or64(R5, R1)
    .store("u8", R10, byteSlot, R4).store("u8", R10, byteSlot + 1, R5)
    .mov64(R1, R6).mov64(R2, ipOffset).mov64(R3, R10).add64(R3, byteSlot).mov64(R4, 2).mov64(R5, 0)
    .call("skb_store_bytes");
  a.label(done);
}

export function markerProgram(rules: readonly ProgramMarkRule[]): AssembledProgram {
  expectProgramRules("generate marker program", "rules", rules);
  rules.forEach((rule, index) => expectObject("generate marker program", `rules[${index}].actions`, rule.actions));
  const a = new Assembler();
  const subprograms = new FilterSubprograms("tc");
  a.mov64(R6, R1);
  emitPacketFields(a, { hook: "tc", address: "destination" });
  for (const rule of rules) {
    const after = `after_mark_${rule.slot}`;
    emitMatchCheck(a, rule.match, after, subprograms);
    const { priority, fwmark, dscp } = rule.actions;
    if (priority !== undefined) a.mov32(R1, priority).store("u32", R6, skbPriority, R1);
    if (fwmark !== undefined) a.mov32(R1, fwmark).store("u32", R6, skbMark, R1);
    if (dscp !== undefined) emitDscp(a, dscp, `dscp_done_${rule.slot}`);
    a.store("u32", R10, FieldSlot.scratch, rule.slot)
      .mov64(R2, R10).add64(R2, FieldSlot.scratch)
      .loadMapFd(R1, markerMapNames.counters)
      .call("map_lookup_elem")
      .jumpIf(R0, "==", 0, "out")
      .load("u64", R1, R0, 0).add64(R1, 1).store("u64", R0, 0, R1)
      .load("u64", R1, R0, 8).load("u64", R2, R10, FieldSlot.length).add64(R1, R2).store("u64", R0, 8, R1)
      .jump("out");
    a.label(after);
  }
  a.label("out").return(next);
  subprograms.appendTo(a);
  return a.finish();
}
