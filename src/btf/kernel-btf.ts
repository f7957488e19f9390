import { readFileSync } from "node:fs";
import { Btf } from "./btf.js";
import { BtfFormatError } from "./btf-format-error.js";
import { NetbpfError } from "../sys/errors.js";
import { expectString } from "../sys/argument-checks.js";

export const kernelBtfPath = "/sys/kernel/btf/vmlinux";
export const kernelBtfDirectory = "/sys/kernel/btf";

const cache = new Map<string, Btf>();

function readBtfFile(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
    throw new NetbpfError(
      `load ${what}`,
      `cannot read ${path}: ${code}`,
      code === "ENOENT" ? "the kernel was built without CONFIG_DEBUG_INFO_BTF, or sysfs is not mounted" : undefined,
      { cause: error },
    );
  }
}

/**
 * The running kernel's BTF (/sys/kernel/btf/vmlinux), parsed once and cached.
 * Parsing indexes type offsets only; types decode on first use.
 */
export function loadKernelBtf(path: string = kernelBtfPath): Btf {
  expectString("load kernel BTF", "path", path);
  const cached = cache.get(path);
  if (cached) return cached;
  const btf = parseWithContext(readBtfFile(path, "kernel BTF"), path);
  cache.set(path, btf);
  return btf;
}

/** BTF of a loaded kernel module (/sys/kernel/btf/<module>), split BTF on top of the kernel's; cached. */
export function loadModuleBtf(module: string, base: Btf = loadKernelBtf()): Btf {
  if (!/^[A-Za-z0-9_.-]+$/.test(module) || module === "vmlinux") {
    throw new NetbpfError("load module BTF", `invalid module name ${JSON.stringify(module)}`);
  }
  const path = `${kernelBtfDirectory}/${module}`;
  const cached = cache.get(path);
  if (cached && cached.base === base) return cached;
  const btf = parseWithContext(readBtfFile(path, "module BTF"), path, base);
  cache.set(path, btf);
  return btf;
}

function parseWithContext(bytes: Uint8Array, path: string, base?: Btf): Btf {
  try {
    // The kernel checked its own BTF; the up-front reference check is skipped for speed
    // (a malformed type would still be reported as BtfFormatError when it is decoded).
    return Btf.parse(bytes, { base, validate: false });
  } catch (error) {
    if (error instanceof BtfFormatError) {
      throw new BtfFormatError(`${path}: ${error.message}`, { offset: error.offset, typeId: error.typeId }, "load kernel BTF");
    }
    throw error;
  }
}

/** Forget cached kernel BTF (for tests, or after modules were loaded or unloaded). */
export function clearKernelBtfCache(): void {
  cache.clear();
}
