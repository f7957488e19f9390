import { readFileSync } from "node:fs";
import { release } from "node:os";
import { gunzipSync } from "node:zlib";
import type { Btf } from "./btf.js";
import { skipQualifiers } from "./btf-query.js";
import { expectBtf, expectBtfType } from "./expect-btf.js";
import { expectArray, expectInteger, expectOneOf, expectString } from "../sys/argument-checks.js";

/**
 * Resolution of what a BPF object leaves to the running kernel, the way
 * libbpf does it: attach targets of BTF-typed programs (tp_btf, fentry, lsm,
 * iter), `__ksym` variables and kfuncs in kernel BTF, untyped `__ksym`
 * addresses in /proc/kallsyms, and `__kconfig` values from the kernel's
 * configuration. Kernel BTF and these files are plain inputs here.
 */

/** What kind of kernel BTF type a BTF-typed program attaches to, from its section (libbpf's rules). */
export type AttachBtfKind = "rawTracepoint" | "function" | "lsm" | "iterator";

/**
 * The kernel BTF type a program attaches to: `btf_trace_<name>` (a typedef)
 * for tp_btf, the FUNC `<name>` for fentry/fexit/fmod_ret, `bpf_lsm_<name>`
 * for lsm and `bpf_iter_<name>` for iter. Undefined when the kernel has none.
 */
export function findAttachBtfId(kernel: Btf, kind: AttachBtfKind, name: string): { id: number; typeName: string } | undefined {
  expectBtf("find attach BTF id", kernel, "kernel");
  expectOneOf("find attach BTF id", "kind", kind, ["rawTracepoint", "function", "lsm", "iterator"]);
  expectString("find attach BTF id", "name", name);
  const [typeName, btfKind] = kind === "rawTracepoint" ? [`btf_trace_${name}`, "typedef" as const]
    : kind === "lsm" ? [`bpf_lsm_${name}`, "function" as const]
      : kind === "iterator" ? [`bpf_iter_${name}`, "function" as const]
        : [name, "function" as const];
  const id = kernel.findByName(typeName, btfKind)[0];
  return id === undefined ? undefined : { id, typeName };
}

/** The kernel BTF id of a kernel function (kfunc) by name. */
export function findKernelFunction(kernel: Btf, name: string): number | undefined {
  expectBtf("find kernel function", kernel, "kernel");
  expectString("find kernel function", "name", name);
  return kernel.findByName(name, "function")[0];
}

/** The kernel BTF id of a kernel variable (typed `__ksym`) by name. */
export function findKernelVariable(kernel: Btf, name: string): number | undefined {
  expectBtf("find kernel variable", kernel, "kernel");
  expectString("find kernel variable", "name", name);
  return kernel.findByName(name, "variable")[0];
}

let kallsyms: Map<string, bigint> | undefined;

/** The address of a kernel symbol in /proc/kallsyms (untyped `__ksym` externs), or undefined. */
export function kernelSymbolAddress(name: string, path = "/proc/kallsyms"): bigint | undefined {
  expectString("find kernel symbol", "name", name);
  expectString("find kernel symbol", "path", path);
  if (!kallsyms || path !== "/proc/kallsyms") {
    const table = new Map<string, bigint>();
    for (const line of readFileSync(path, "latin1").split("\n")) {
      const [address, , symbol] = line.split(/\s+/);
      if (!address || !symbol || table.has(symbol)) continue;
      table.set(symbol, BigInt(`0x${address}`));
    }
    if (path !== "/proc/kallsyms") return table.get(name);
    kallsyms = table;
  }
  return kallsyms.get(name);
}

/** KERNEL_VERSION(a, b, c) of a release string like "6.18.44-…" (c saturates at 255, as in the kernel). */
export function kernelVersionCode(text: string = release()): number {
  expectString("kernel version code", "text", text);
  const match = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!match) return 0;
  return (Number(match[1]) << 16) + (Number(match[2]) << 8) + Math.min(255, Number(match[3] ?? 0));
}

/**
 * The running kernel's configuration as NAME → raw value ("y", "m", "123",
 * "\"text\""), from /proc/config.gz or /boot/config-<release>. Lines like
 * "# CONFIG_X is not set" are comments to libbpf too: such options are absent.
 */
export function readKernelConfig(paths: string[] = ["/proc/config.gz", `/boot/config-${release()}`]): { values: Map<string, string>; path: string } | undefined {
  for (const path of expectArray<unknown>("read kernel config", "paths", paths)) expectString("read kernel config", "paths[]", path);
  for (const path of paths) {
    let text: string;
    try {
      const bytes = readFileSync(path);
      text = (path.endsWith(".gz") ? gunzipSync(bytes) : bytes).toString("latin1");
    } catch {
      continue;
    }
    const values = new Map<string, string>();
    for (const line of text.split("\n")) {
      if (!line.startsWith("CONFIG_")) continue;
      const equals = line.indexOf("=");
      if (equals < 0) continue;
      values.set(line.slice(0, equals), line.slice(equals + 1).trim());
    }
    return { values, path };
  }
  return undefined;
}

/**
 * Encodes one kconfig value into the bytes of the extern's type in the
 * object's BTF (libbpf's rules): bool takes y/n, a `libbpf_tristate` enum or
 * any enum y/n/m (1/0/2), char takes y/n/m as the letter, integers take
 * numbers, char arrays take quoted strings. Returns an error message when the
 * value does not fit the type.
 */
export function encodeKconfigValue(local: Btf, typeId: number, size: number, raw: string): Buffer | string {
  expectBtfType("encode kconfig value", local, typeId, "local", "typeId");
  expectInteger("encode kconfig value", "size", size, 1, 0xffffffff);
  expectString("encode kconfig value", "raw", raw);
  const out = Buffer.alloc(size);
  const type = local.type(skipQualifiers(local, typeId));
  const tristate = raw === "y" || raw === "n" || raw === "m";
  if (type.kind === "int" && type.bool) {
    if (!tristate || raw === "m") return `value "${raw}" is not a bool (y or n)`;
    out[0] = raw === "y" ? 1 : 0;
    return out;
  }
  if (type.kind === "enum") {
    if (!tristate) return `value "${raw}" is not a tristate (y, n or m)`;
    out.writeUIntLE(raw === "y" ? 1 : raw === "m" ? 2 : 0, 0, Math.min(size, 6));
    return out;
  }
  if (type.kind === "int" && type.char && size === 1 && tristate) {
    out.write(raw, "latin1");
    return out;
  }
  if (type.kind === "array") {
    if (!raw.startsWith("\"") || !raw.endsWith("\"") || raw.length < 2) return `value ${raw} is not a string`;
    const text = Buffer.from(raw.slice(1, -1).replace(/\\(["\\])/g, "$1"), "latin1");
    text.copy(out, 0, 0, Math.max(0, size - 1));
    return out;
  }
  if (type.kind === "int" || type.kind === "enum64") {
    if (!/^-?(0x[0-9a-fA-F]+|\d+)$/.test(raw)) return `value "${raw}" is not a number`;
    const negative = raw.startsWith("-");
    const magnitude = BigInt(negative ? raw.slice(1) : raw);
    const value = negative ? -magnitude : magnitude;
    const bits = BigInt(size * 8);
    const signed = type.kind === "int" ? type.signed : type.signed;
    const fits = signed ? value >= -(1n << (bits - 1n)) && value < 1n << (bits - 1n) : value >= 0n && value < 1n << bits;
    if (!fits) return `value ${raw} does not fit in ${size} bytes`;
    const unsigned = BigInt.asUintN(Number(bits), value);
    for (let i = 0; i < size; i++) out[i] = Number((unsigned >> BigInt(i * 8)) & 0xffn);
    return out;
  }
  return `a ${type.kind} cannot hold a kconfig value`;
}
