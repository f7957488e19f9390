import { R0, R1, R2, R10, type Assembler } from "../asm/assembler.js";

/**
 * Emits `map[key] += 1` (atomically, a u64 counter) for an array map the
 * program refers to by name. Uses r0–r2 and the 4 stack bytes at
 * `stackOffset`; jumps to `skip` when the lookup fails.
 */
export function addToCounter(assembler: Assembler, mapName: string, key: number, options: { stackOffset?: number; skip: string }): Assembler {
  const slot = options.stackOffset ?? -4;
  return assembler
    .store("u32", R10, slot, key)
    .mov64(R2, R10).add64(R2, slot)
    .loadMapFd(R1, mapName)
    .call("map_lookup_elem")
    .jumpIf(R0, "==", 0, options.skip)
    .mov64(R1, 1)
    .atomic("u64", "add", R0, 0, R1);
}
