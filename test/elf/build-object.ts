import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** test/elf/objects in the source tree: C sources the loader tests build with clang at run time. */
export const objectSourceDirectory = fileURLToPath(new URL("../../../test/elf/objects/", import.meta.url));

function runs(tool: string, args: string[]): boolean {
  return spawnSync(tool, args, { stdio: "ignore" }).status === 0;
}

/** clang (to build BPF objects and the reference loader), libbpf-dev (for the loader), bpftool (for vmlinux.h). */
export function toolsAvailable(): { clang: boolean; libbpf: boolean; bpftool: boolean } {
  const clang = runs("clang", ["--version"]);
  return {
    clang,
    libbpf: clang && existsSync("/usr/include/bpf/libbpf.h"),
    bpftool: runs("bpftool", ["version"]),
  };
}

/** A scratch folder removed by remove(). */
export function scratchFolder(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `nbf2-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

const multiarch = `/usr/include/${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux-gnu`;

/**
 * Builds a BPF object with clang -O2 -g -target bpf: `source` is the name of a
 * file in test/elf/objects, or C text (when it contains a newline).
 */
export function buildObject(directory: string, source: string, output: string, extra: string[] = []): string {
  let input = join(objectSourceDirectory, source);
  if (source.includes("\n")) {
    input = join(directory, output.replace(/\.o$/, ".c"));
    writeFileSync(input, source);
  }
  const path = join(directory, output);
  execFileSync("clang", ["-O2", "-g", "-target", "bpf", `-I${multiarch}`, `-I${directory}`, ...extra, "-c", input, "-o", path], { stdio: "pipe" });
  return path;
}

/** Writes vmlinux.h for the running kernel into `directory` (bpftool btf dump … format c), as libbpf-tools do. */
export function writeVmlinuxHeader(directory: string): void {
  const header = execFileSync("bpftool", ["btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"], { maxBuffer: 1 << 28 });
  writeFileSync(join(directory, "vmlinux.h"), header);
}

/** Builds test/elf/objects/libbpf-loader.c against Debian's libbpf-dev (with clang as the host compiler: CI installs clang, not gcc). */
export function buildLibbpfLoader(directory: string): string {
  const path = join(directory, "libbpf-loader");
  execFileSync("clang", ["-O2", "-Wall", "-o", path, join(objectSourceDirectory, "libbpf-loader.c"), "-lbpf"], { stdio: "pipe" });
  return path;
}
