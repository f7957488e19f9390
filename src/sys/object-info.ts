/** Decoders for BPF_OBJ_GET_INFO_BY_FD: bpf_prog_info, bpf_map_info, bpf_link_info. */
import { Attribute } from "./attribute.js";
import { objectGetInfo } from "./bpf.js";

function fixedString(buffer: Buffer, offset: number, width: number): string {
  const slice = buffer.subarray(offset, offset + width);
  const end = slice.indexOf(0);
  return slice.toString("utf8", 0, end < 0 ? width : end);
}

export interface ProgramInfo {
  type: number;
  id: number;
  /** The program's tag: a hash of its instructions, as hex. */
  tag: string;
  name: string;
  jitedSize: number;
  translatedSize: number;
  /** Nanoseconds since boot when the program was loaded. */
  loadTime: bigint;
  createdByUid: number;
  mapIds: number[];
  gplCompatible: boolean;
  btfId: number;
  /** Accumulated run time and count (when BPF stats are enabled). */
  runTimeNs: bigint;
  runCount: bigint;
  verifiedInstructions: number;
  /** The translated (post-verifier) instructions, when asked for. */
  translatedInstructions?: Buffer;
}

export function programInfo(fd: number, options: { instructions?: boolean } = {}): ProgramInfo {
  let info = new Attribute(232);
  objectGetInfo(fd, info, "program info");
  const mapCount = info.readU32(52);
  const translatedSize = info.readU32(20);
  if (mapCount > 0 || (options.instructions && translatedSize > 0)) {
    const mapIds = Buffer.alloc(mapCount * 4);
    const instructions = options.instructions ? Buffer.alloc(translatedSize) : null;
    info = new Attribute(232).u32(52, mapCount).pointer(56, mapIds);
    if (instructions) info.u32(20, translatedSize).pointer(32, instructions);
    objectGetInfo(fd, info, "program info");
    return decodeProgramInfo(info.buffer, mapIds, instructions);
  }
  return decodeProgramInfo(info.buffer, Buffer.alloc(0), null);
}

function decodeProgramInfo(b: Buffer, mapIds: Buffer, instructions: Buffer | null): ProgramInfo {
  const ids: number[] = [];
  for (let i = 0; i + 4 <= mapIds.length; i += 4) ids.push(mapIds.readUInt32LE(i));
  const info: ProgramInfo = {
    type: b.readUInt32LE(0),
    id: b.readUInt32LE(4),
    tag: b.subarray(8, 16).toString("hex"),
    jitedSize: b.readUInt32LE(16),
    translatedSize: b.readUInt32LE(20),
    loadTime: b.readBigUInt64LE(40),
    createdByUid: b.readUInt32LE(48),
    mapIds: ids,
    name: fixedString(b, 64, 16),
    gplCompatible: (b.readUInt32LE(84) & 1) === 1,
    btfId: b.readUInt32LE(128),
    runTimeNs: b.readBigUInt64LE(192),
    runCount: b.readBigUInt64LE(200),
    verifiedInstructions: b.readUInt32LE(216),
  };
  if (instructions) info.translatedInstructions = instructions;
  return info;
}

export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
  btfId: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
  mapExtra: bigint;
}

export function mapInfo(fd: number): MapInfo {
  const info = new Attribute(96);
  objectGetInfo(fd, info, "map info");
  const b = info.buffer;
  return {
    type: b.readUInt32LE(0),
    id: b.readUInt32LE(4),
    keySize: b.readUInt32LE(8),
    valueSize: b.readUInt32LE(12),
    maxEntries: b.readUInt32LE(16),
    flags: b.readUInt32LE(20),
    name: fixedString(b, 24, 16),
    btfId: b.readUInt32LE(64),
    btfKeyTypeId: b.readUInt32LE(68),
    btfValueTypeId: b.readUInt32LE(72),
    mapExtra: b.readBigUInt64LE(80),
  };
}

export interface LinkInfo {
  type: number;
  id: number;
  programId: number;
  /** Interface index for xdp, tcx and netkit links. */
  ifindex?: number;
  attachType?: number;
  cgroupId?: bigint;
  /** Raw tracepoint links: the tracepoint; perf event links on a tracepoint: its name (without the category). */
  tracepointName?: string;
  /** Perf event links: the kind of perf event (enum bpf_perf_event_type: 5 tracepoint, 3 kprobe, …). */
  perfEventType?: number;
}

export function linkInfo(fd: number): LinkInfo {
  const info = new Attribute(128);
  objectGetInfo(fd, info, "link info");
  const b = info.buffer;
  const type = b.readUInt32LE(0);
  const result: LinkInfo = { type, id: b.readUInt32LE(4), programId: b.readUInt32LE(8) };
  switch (type) {
    case 1: { // raw tracepoint: fetch the name with a second call
      const length = b.readUInt32LE(24);
      if (length > 0) {
        const name = Buffer.alloc(length);
        const again = new Attribute(128).pointer(16, name).u32(24, length);
        objectGetInfo(fd, again, "link info");
        result.tracepointName = fixedString(name, 0, length);
      }
      break;
    }
    case 3:
      result.cgroupId = b.readBigUInt64LE(16);
      result.attachType = b.readUInt32LE(24);
      break;
    case 6:
      result.ifindex = b.readUInt32LE(16);
      break;
    case 7: { // perf event: for a tracepoint, fetch its name with a second call
      result.perfEventType = b.readUInt32LE(16);
      const length = b.readUInt32LE(32);
      if (result.perfEventType === 5 && length > 0) {
        const name = Buffer.alloc(length);
        const again = new Attribute(128).pointer(24, name).u32(32, length);
        objectGetInfo(fd, again, "link info");
        result.tracepointName = fixedString(name, 0, length);
      }
      break;
    }
    case 11:
    case 13:
      result.ifindex = b.readUInt32LE(16);
      result.attachType = b.readUInt32LE(20);
      break;
  }
  return result;
}

/** The raw BTF blob of a loaded BTF object (BPF_OBJ_GET_INFO_BY_FD on a BTF fd). */
export function btfData(fd: number): Buffer {
  const first = new Attribute(32);
  objectGetInfo(fd, first, "BTF info");
  const size = first.readU32(8);
  const data = Buffer.alloc(size);
  const again = new Attribute(32).pointer(0, data).u32(8, size);
  objectGetInfo(fd, again, "BTF info");
  return data;
}
