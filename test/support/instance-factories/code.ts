import { Assembler, R0 } from "../../../src/asm/assembler.js";
import { Interpreter } from "../../../src/asm/interpreter.js";
import { JavaScriptProgram } from "../../../src/asm/javascript-program.js";
import { Btf } from "../../../src/btf/btf.js";
import { BtfBuilder, encodeBtf } from "../../../src/btf/btf-builder.js";
import { compileCaptureFilter, type CaptureFilter } from "../../../src/capture/capture-filter.js";
import { OfflineFilter } from "../../../src/capture/offline-filter.js";
import { ElfFile } from "../../../src/elf/elf-file.js";
import { LinkType } from "../../../src/pcap/link-type.js";
import { ConnectionFilter } from "../../../src/server/connection-filter.js";
import { everyKind } from "../../btf/support/every-kind.js";
import { readFixture } from "../../elf/fixtures.js";
import type { AcceptedCalls, InstanceFactory } from "./types.js";

// Pure objects: nothing to clean up. The expensive inputs are made once and
// only read by the instances (a Btf is immutable, a CaptureFilter plain data).
let btfBytes: Uint8Array | undefined;
let objectBytes: Buffer | undefined;
let captureFilter: CaptureFilter | undefined;

const returnOne = new Assembler().mov64(R0, 1).exit().finish().instructions;

export const factories: Record<string, InstanceFactory> = {
  Assembler: () => new Assembler(),
  Btf: () => Btf.parse(btfBytes ??= encodeBtf(everyKind())),
  BtfBuilder: () => BtfBuilder.from(Btf.parse(btfBytes ??= encodeBtf(everyKind()))),
  ConnectionFilter: () => ConnectionFilter.compile("tcp port 443"),
  ElfFile: () => ElfFile.parse(objectBytes ??= readFixture("collection.o")),
  Interpreter: () => new Interpreter(returnOne),
  JavaScriptProgram: () => new JavaScriptProgram(returnOne),
  OfflineFilter: () => new OfflineFilter(captureFilter ??= compileCaptureFilter("tcp port 80", LinkType.ETHERNET)),
};

export const accepted: AcceptedCalls = {
};
