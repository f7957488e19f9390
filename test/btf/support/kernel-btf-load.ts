import { closeSync } from "node:fs";
import koffi from "koffi";
import { errnoName } from "../../../src/sys/errors.js";

/**
 * Test-only BPF_BTF_LOAD through the raw syscall, so the builder's and sanitizer's
 * output can be checked by the kernel's own BTF verifier. Returns the verifier log on failure.
 */
const bpfSyscallNumber = 321; // x86_64
const bpfBtfLoad = 18;

let syscall: ((...args: unknown[]) => number | bigint) | undefined;

export function kernelBtfLoadAvailable(): boolean {
  return process.arch === "x64" && process.platform === "linux" && process.getuid?.() === 0;
}

export function loadBtfIntoKernel(bytes: Uint8Array): { ok: true } | { ok: false; error: string; log: string } {
  syscall ??= koffi.load("libc.so.6").func("long syscall(long number, ...)") as unknown as (...args: unknown[]) => number;
  const data = Buffer.from(bytes);
  const log = Buffer.alloc(64 * 1024);
  const attributes = Buffer.alloc(40);
  attributes.writeBigUInt64LE(koffi.address(data) as bigint, 0);
  attributes.writeBigUInt64LE(koffi.address(log) as bigint, 8);
  attributes.writeUInt32LE(data.length, 16);
  attributes.writeUInt32LE(log.length, 20);
  attributes.writeUInt32LE(1, 24);
  const result = Number(syscall(bpfSyscallNumber, "int", bpfBtfLoad, "void *", attributes, "unsigned int", attributes.length));
  if (result >= 0) {
    closeSync(result);
    return { ok: true };
  }
  const end = log.indexOf(0);
  return { ok: false, error: errnoName(koffi.errno()), log: log.toString("utf8", 0, end < 0 ? log.length : end) };
}
