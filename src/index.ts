export * from "./sys/errors.js";
export { MapType, ProgramType, AttachType, LinkType, MapFlag, UpdateFlag, ProgramFlag, AttachFlag, XdpFlag } from "./sys/bpf-constants.js";
export type { ProgramInfo, MapInfo, LinkInfo } from "./sys/object-info.js";
export * from "./core/codec.js";
export { BpfMap, BpfMap as Map, type MapSpec, type BatchOptions } from "./core/map.js";
export { Program, type ProgramSpec, type ProgramLoadOptions, type RunOptions, type TestRunResult } from "./core/program.js";
