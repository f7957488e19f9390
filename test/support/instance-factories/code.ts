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
  "Assembler#call": { calls: ["(42)"], reason: "helper is a helper name or its numeric id: 42 is bpf_get_numa_node_id" },
  "Assembler#callKernelFunction": { calls: ["(42)"], reason: "btfId is any BTF type id (a kfunc in vmlinux BTF), moduleIndex defaults to 0 (vmlinux); the kernel checks the id on load" },
  "Assembler#callLocal": { calls: ['("x")'], reason: "any non-empty label name; it may be defined after the call, and finish() reports a label that never is" },
  "Assembler#jump": { calls: ['("x")'], reason: "any non-empty label name; it may be defined after the jump, and finish() reports a label that never is" },
  "Assembler#mayGoto": { calls: ['("x")'], reason: "any non-empty label name; it may be defined after the jump, and finish() reports a label that never is" },
  "Assembler#label": { calls: ['("x")'], reason: "any non-empty string names a label" },
  "Assembler#hasLabel": { calls: ['("x")'], reason: "asks whether label \"x\" is placed (false on a fresh builder)" },
  "Assembler#newLabel": { calls: ['("x")'], reason: "prefix is any string; gives \"x0\"" },
  "Assembler#return": { calls: ["(42)"], reason: "value is a register or an immediate: r0 = 42, exit" },
  "Btf#describe": { calls: ["(42)"], reason: "describe is for messages and describes any integer id, one that does not exist as \"[42] (missing)\"" },
  "Btf#field": { calls: ['("x")'], reason: "a string root is a type name (or \"type.path\"); \"x\" is well formed and the factory's BTF has no such type: a BtfLookupError (a NetbpfError) says no type is named \"x\"" },
  "Btf#fieldOffset": { calls: ['("x")'], reason: "as field(\"x\"): a well-formed type name this BTF lacks, reported by a BtfLookupError" },
  "Btf#findByName": { calls: ['("x")'], reason: "any string is a name to search for: no type is named \"x\", so []" },
  "Btf#findString": { calls: ['("x")'], reason: "any string may be searched for: \"x\" is not in the string section, so undefined" },
  "Btf#has": { calls: ["(42)"], reason: "asks whether type id 42 exists: false for the factory's 29 types" },
  "Btf#string": { calls: ["(42)"], reason: "any offset inside the string section is one the kernel accepts (btf_name_offset_valid checks only the bound): 42 is inside the factory's 204-byte section and reads up to the next NUL" },
  "BtfBuilder#addString": { calls: ['("x")'], reason: "interns the string \"x\" and returns its offset" },
  "ConnectionFilter#matches": { calls: ["({})"], reason: "every field of a FilterableConnection is optional; a connection without addresses matches no filter, so false" },
  "ElfFile#section": { calls: ['("x")'], reason: "any string is a section name to look up: the object has no section \"x\", so undefined" },
};
