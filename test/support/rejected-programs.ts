import { Assembler, R0, R1, R2, R3, R4, R5, R6, R7, R10 } from "../../src/asm/assembler.js";
import { BpfMap } from "../../src/core/map.js";
import { Program, type ProgramSpec } from "../../src/core/program.js";
import { AttachType, MapType, ProgramFlag, ProgramType } from "../../src/sys/bpf-constants.js";
import { VerifierError } from "../../src/sys/errors.js";

/**
 * Small programs the kernel verifier rejects, each for one reason. Each
 * builder returns the spec and the maps it needs; `rejectionOf` loads it and
 * returns the VerifierError (closing the maps).
 */
export interface RejectedProgram {
  spec: ProgramSpec;
  /** The instruction (slot) the verifier is expected to stop at; undefined when the log names none; "somewhere" when it depends on the search order. */
  failingInstruction: number | undefined | "somewhere";
  maps?: () => Record<string, BpfMap>;
}

function arrayMap(): Record<string, BpfMap> {
  return { values: BpfMap.create({ name: "nb_vr_values", type: MapType.Hash, keySize: 4, valueSize: 8, maxEntries: 1 }) };
}

function ringbufMap(): Record<string, BpfMap> {
  return { events: BpfMap.create({ name: "nb_vr_events", type: MapType.Ringbuf, maxEntries: 4096 }) };
}

export const rejectedPrograms = {
  /** XDP reads a packet byte without comparing against data_end. */
  "packet-bounds": (): RejectedProgram => ({
    spec: {
      type: ProgramType.Xdp,
      instructions: new Assembler()
        .load("u32", R2, R1, 0) // data
        .load("u32", R3, R1, 4) // data_end
        .load("u8", R0, R2, 12)
        .return(2)
        .finish(),
    },
    failingInstruction: 2,
  }),

  /** The map_lookup_elem result is dereferenced without a NULL check. */
  "null-pointer": (): RejectedProgram => ({
    spec: {
      type: ProgramType.SocketFilter,
      instructions: new Assembler()
        .store("u32", R10, -4, 0)
        .mov64(R2, R10).add64(R2, -4)
        .loadMapFd(R1, "values")
        .call("map_lookup_elem")
        .load("u64", R0, R0, 0)
        .exit()
        .finish(),
    },
    failingInstruction: 6,
    maps: arrayMap,
  }),

  /** A number is used as a pointer. */
  "not-a-pointer": (): RejectedProgram => ({
    spec: { type: ProgramType.SocketFilter, instructions: new Assembler().mov64(R1, 64).load("u64", R0, R1, 0).exit().finish() },
    failingInstruction: 1,
  }),

  /** A loop whose state never changes. */
  "infinite-loop": (): RejectedProgram => ({
    spec: {
      type: ProgramType.SocketFilter,
      instructions: new Assembler().mov64(R0, 0).load("u32", R6, R1, 0).label("again").jumpIf(R6, "!=", 0, "again").exit().finish(),
    },
    failingInstruction: 2,
  }),

  /** A loop bounded by the packet length: the verifier walks iterations until its budget runs out. */
  "unbounded-loop": (): RejectedProgram => ({
    spec: {
      type: ProgramType.SocketFilter,
      instructions: new Assembler()
        .load("u32", R6, R1, 0)
        .mov64(R7, 0)
        .label("again")
        .add64(R7, 1)
        .jumpIf(R7, "<", R6, "again")
        .mov64(R0, 0)
        .exit()
        .finish(),
    },
    failingInstruction: 3,
  }),

  /**
   * Five pointers, each moved down by up to ten independent branches: 11^5
   * distinct states, so the verifier runs out of its 1 000 000 instructions.
   */
  "too-many-instructions": (): RejectedProgram => {
    const pointers = [R2, R3, R4, R5, R7];
    const program = new Assembler();
    for (const pointer of pointers) program.mov64(pointer, R10);
    for (const pointer of pointers) {
      program.load("u32", R6, R1, 0);
      for (let bit = 0; bit < 10; bit++) program.jumpIf(R6, "&", 1 << bit, `${pointer}-${bit}`).add64(pointer, -1).label(`${pointer}-${bit}`);
    }
    program.mov64(R0, 0);
    for (const pointer of pointers) program.load("u8", R1, pointer, -1).add64(R0, R1);
    program.exit();
    return { spec: { type: ProgramType.SocketFilter, instructions: program.finish() }, failingInstruction: "somewhere" };
  },

  /** Thousands of independent branches pending at once. */
  "too-many-branches": (): RejectedProgram => {
    const program = new Assembler().load("u32", R6, R1, 0).mov64(R7, 0);
    for (let i = 0; i < 9000; i++) program.jumpIf(R6, "==", i, `skip${i}`).add64(R7, 1).label(`skip${i}`);
    program.mov64(R0, R7).exit();
    return { spec: { type: ProgramType.SocketFilter, instructions: program.finish() }, failingInstruction: 16386 };
  },

  /** Reads above the frame pointer: outside the stack. */
  "stack-access": (): RejectedProgram => ({
    spec: { type: ProgramType.SocketFilter, instructions: new Assembler().load("u64", R0, R10, 8).exit().finish() },
    failingInstruction: 0,
  }),

  /** Passes a helper a key pointer outside the stack. */
  "stack-access-indirect": (): RejectedProgram => ({
    spec: {
      type: ProgramType.SocketFilter,
      instructions: new Assembler()
        .mov64(R2, R10).add64(R2, 8)
        .loadMapFd(R1, "values")
        .call("map_lookup_elem")
        .mov64(R0, 0)
        .exit()
        .finish(),
    },
    failingInstruction: 4,
    maps: arrayMap,
  }),

  /** Writes below the 512-byte stack. */
  "stack-access-write": (): RejectedProgram => ({
    spec: { type: ProgramType.SocketFilter, instructions: new Assembler().store("u64", R10, -520, 0).mov64(R0, 0).exit().finish() },
    failingInstruction: 0,
  }),

  /** Two frames of 400 bytes each: more than the 512-byte stack. */
  "stack-limit": (): RejectedProgram => ({
    spec: {
      type: ProgramType.SocketFilter,
      instructions: new Assembler()
        .store("u64", R10, -400, 0)
        .callLocal("inner")
        .exit()
        .label("inner")
        .store("u64", R10, -400, 0)
        .mov64(R0, 0)
        .exit()
        .finish(),
    },
    failingInstruction: undefined,
  }),

  /** Reads a register nothing wrote. */
  "uninitialized-register": (): RejectedProgram => ({
    spec: { type: ProgramType.SocketFilter, instructions: new Assembler().mov64(R0, 0).add64(R0, R3).exit().finish() },
    failingInstruction: 1,
  }),

  /** bpf_redirect is for tc and XDP, not socket filters. */
  "helper-not-allowed": (): RejectedProgram => ({
    spec: { type: ProgramType.SocketFilter, instructions: new Assembler().mov64(R1, 1).mov64(R2, 0).call("redirect").mov64(R0, 0).exit().finish() },
    failingInstruction: 2,
  }),

  /** A helper id the kernel does not know. */
  "helper-unknown": (): RejectedProgram => ({
    spec: { type: ProgramType.SocketFilter, instructions: new Assembler().call(99999).mov64(R0, 0).exit().finish() },
    failingInstruction: 0,
  }),

  /** bpf_trace_printk is GPL-only; the program says it is MIT-licensed. */
  "helper-license": (): RejectedProgram => ({
    spec: {
      type: ProgramType.SocketFilter,
      license: "MIT",
      instructions: new Assembler().store("u64", R10, -8, 0x6968).mov64(R1, R10).add64(R1, -8).mov64(R2, 8).call("trace_printk").mov64(R0, 0).exit().finish(),
    },
    failingInstruction: 4,
  }),

  /** Reads past the end of struct __sk_buff. */
  "context-access": (): RejectedProgram => ({
    spec: { type: ProgramType.SocketFilter, instructions: new Assembler().load("u32", R0, R1, 1000).exit().finish() },
    failingInstruction: 0,
  }),

  /** Returns 7 from a cgroup skb program, which may only return 0..3. */
  "return-value": (): RejectedProgram => ({
    spec: { type: ProgramType.CgroupSkb, expectedAttachType: AttachType.CgroupInetIngress, instructions: new Assembler().mov64(R0, 7).exit().finish() },
    failingInstruction: 1,
  }),

  /** Passes a number where the helper wants a map. */
  "argument-type": (): RejectedProgram => ({
    spec: {
      type: ProgramType.SocketFilter,
      instructions: new Assembler().store("u32", R10, -4, 0).mov64(R2, R10).add64(R2, -4).mov64(R1, 0).call("map_lookup_elem").mov64(R0, 0).exit().finish(),
    },
    failingInstruction: 4,
  }),

  /** A 4-byte packet load at an odd offset with strict alignment. */
  misaligned: (): RejectedProgram => ({
    spec: {
      type: ProgramType.Xdp,
      flags: ProgramFlag.StrictAlignment,
      instructions: new Assembler()
        .load("u32", R2, R1, 0)
        .load("u32", R3, R1, 4)
        .mov64(R1, R2).add64(R1, 16)
        .jumpIf(R1, ">", R3, "out")
        .load("u32", R0, R2, 1)
        .label("out")
        .return(2)
        .finish(),
    },
    failingInstruction: 5,
  }),

  /** Multiplies the context pointer. */
  "pointer-arithmetic": (): RejectedProgram => ({
    spec: { type: ProgramType.SocketFilter, instructions: new Assembler().mul64(R1, 2).mov64(R0, 0).exit().finish() },
    failingInstruction: 0,
  }),

  /** Reserves ring buffer space and never submits it. */
  "unreleased-reference": (): RejectedProgram => ({
    spec: {
      type: ProgramType.SocketFilter,
      instructions: new Assembler()
        .loadMapFd(R1, "events")
        .mov64(R2, 8)
        .mov64(R3, 0)
        .call("ringbuf_reserve")
        .mov64(R0, 0)
        .exit()
        .finish(),
    },
    failingInstruction: 6,
    maps: ringbufMap,
  }),
} satisfies Record<string, () => RejectedProgram>;

export type RejectedProgramName = keyof typeof rejectedPrograms;

/** Loads the program and returns the verifier's rejection; throws if the program loads or fails differently. */
export function rejectionOf(name: RejectedProgramName): { error: VerifierError; program: RejectedProgram } {
  const program = rejectedPrograms[name]();
  const maps = program.maps?.() ?? {};
  try {
    using loaded = Program.load(program.spec, { maps });
    throw new Error(`${name}: the kernel accepted a program meant to be rejected (fd ${loaded.fd.value})`);
  } catch (error) {
    if (error instanceof VerifierError) return { error, program };
    throw error;
  } finally {
    for (const map of Object.values(maps)) map.close();
  }
}
