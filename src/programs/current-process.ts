/**
 * The one emitter for "remember which process did this": stores the current
 * process (tgid and command, 24 bytes at r10-32: u32 pid, u32 zero, char[16]
 * comm) under the key at r10+keyOffset in `mapName`. Used by the socket
 * owner programs of capture and of the traffic counter. With `namespaceOf`
 * (the register holding a cgroup sock program's context), the u32 after the
 * pid holds the low 32 bits of the socket's network namespace cookie
 * (namespace cookies count up from 1, so these identify it). Clobbers r0-r5.
 */
import { R0, R1, R2, R3, R4, R10, type Assembler, type Register } from "../asm/assembler.js";

export const processValueOffset = -32;
export const processValueSize = 24;

export function emitRecordCurrentProcess(assembler: Assembler, mapName: string, keyOffset: number, options: { namespaceOf?: Register } = {}): Assembler {
  if (options.namespaceOf !== undefined) {
    assembler.mov64(R1, options.namespaceOf).call("get_netns_cookie").store("u32", R10, processValueOffset + 4, R0);
  } else {
    assembler.store("u32", R10, processValueOffset + 4, 0);
  }
  return assembler
    .call("get_current_pid_tgid")
    .rightShift64(R0, 32)
    .store("u32", R10, processValueOffset, R0)
    .mov64(R1, R10).add64(R1, processValueOffset + 8)
    .mov64(R2, 16)
    .call("get_current_comm")
    .loadMapFd(R1, mapName)
    .mov64(R2, R10).add64(R2, keyOffset)
    .mov64(R3, R10).add64(R3, processValueOffset)
    .mov64(R4, 0)
    .call("map_update_elem");
}
