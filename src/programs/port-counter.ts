/**
 * A tc program counting the packets and bytes of one TCP port, generated with
 * the Assembler. Either direction uses its own slot of a per-CPU array map
 * so counting needs no atomics: slot 0 ingress, slot 1 egress.
 */
import { Assembler, R0, R1, R2, R3, R4, R5, R6, R7, R8, R10, type AssembledProgram } from "../asm/assembler.js";
import { expectInteger, expectOneOf } from "../sys/argument-checks.js";
import { struct, u64, type Codec } from "../core/codec.js";

/** __sk_buff fields (UAPI context offsets, rewritten by the verifier). */
const skbLen = 0;
const skbData = 76;
const skbDataEnd = 80;

const ethernetHeader = 14;
const ipv4Header = 20;
const ipv6Header = 40;
/** TC_ACT_UNSPEC / TCX_NEXT: let the packet go on as if we were not there. */
const continueVerdict = -1;

export type Direction = "ingress" | "egress";

export interface PortCounterValue {
  packets: bigint;
  bytes: bigint;
}

export const portCounterValue: Codec<PortCounterValue> = struct({ packets: u64, bytes: u64 });

export const portCounterMapName = "port_counts";

/** Slot of the counter map used for each direction. */
export const directionSlot: Record<Direction, number> = { ingress: 0, egress: 1 };

function networkOrder16(port: number): number {
  // Loads of packet bytes are little-endian here, so a port reads back byte-swapped.
  return ((port & 0xff) << 8) | (port >> 8);
}

export function portCounterProgram(port: number, direction: Direction): AssembledProgram {
  expectInteger("port counter", "port", port, 1, 65535);
  expectOneOf("port counter", "direction", direction, ["ingress", "egress"]);
  const portKey = networkOrder16(port);
  return new Assembler()
    .mov64(R6, R1)
    .load("u32", R2, R6, skbData)
    .load("u32", R3, R6, skbDataEnd)
    .mov64(R4, R2).add64(R4, ethernetHeader)
    .jumpIf(R4, ">", R3, "out")
    .load("u16", R5, R2, 12)
    .jumpIf(R5, "==", 0x0008, "ipv4")
    .jumpIf(R5, "==", 0xdd86, "ipv6")
    .jump("out")

    .label("ipv4")
    .mov64(R4, R2).add64(R4, ethernetHeader + ipv4Header)
    .jumpIf(R4, ">", R3, "out")
    .load("u8", R5, R2, ethernetHeader + 9)
    .jumpIf(R5, "!=", 6, "out")
    // Only the first fragment carries the TCP header.
    .load("u16", R7, R2, ethernetHeader + 6)
    .and64(R7, 0xff1f)
    .jumpIf(R7, "!=", 0, "out")
    .load("u8", R5, R2, ethernetHeader)
    .and64(R5, 0x0f)
    .leftShift64(R5, 2)
    .mov64(R4, R2).add64(R4, R5).add64(R4, ethernetHeader)
    .mov64(R8, R4).add64(R8, 4)
    .jumpIf(R8, ">", R3, "out")
    .load("u16", R7, R4, 0)
    .load("u16", R8, R4, 2)
    .jump("ports")

    .label("ipv6")
    .mov64(R4, R2).add64(R4, ethernetHeader + ipv6Header + 4)
    .jumpIf(R4, ">", R3, "out")
    .load("u8", R5, R2, ethernetHeader + 6)
    .jumpIf(R5, "!=", 6, "out")
    .load("u16", R7, R2, ethernetHeader + ipv6Header)
    .load("u16", R8, R2, ethernetHeader + ipv6Header + 2)

    .label("ports")
    .jumpIf(R7, "==", portKey, "count")
    .jumpIf(R8, "!=", portKey, "out")

    .label("count")
    .store("u32", R10, -4, directionSlot[direction])
    .mov64(R2, R10).add64(R2, -4)
    .loadMapFd(R1, portCounterMapName)
    .call("map_lookup_elem")
    .jumpIf(R0, "==", 0, "out")
    .load("u64", R1, R0, 0).add64(R1, 1).store("u64", R0, 0, R1)
    .load("u32", R2, R6, skbLen)
    .load("u64", R1, R0, 8).add64(R1, R2).store("u64", R0, 8, R1)

    .label("out")
    .return(continueVerdict)
    .finish();
}
