import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** One bpf_conformance `.data` file, split into its `-- name` sections. */
export interface ConformanceFile {
  asm?: string;
  /** Raw program bytes from a `-- raw` section. */
  raw?: Uint8Array;
  memory: Uint8Array;
  /** Expected r0, when the file has a `-- result` section. */
  result?: bigint;
  error?: string;
}

/**
 * The bpf_conformance data: NETBPF_CONFORMANCE_DIR, else the copy committed in
 * test/fixtures/bpf_conformance, else shared/conformance/bpf_conformance in an ancestor.
 */
export function findConformanceDirectory(): string | undefined {
  const fromEnvironment = process.env.NETBPF_CONFORMANCE_DIR;
  if (fromEnvironment && existsSync(fromEnvironment)) return fromEnvironment;
  let directory = dirname(fileURLToPath(import.meta.url));
  for (let up = directory; ; up = resolve(up, "..")) {
    const committed = join(up, "test", "fixtures", "bpf_conformance");
    if (existsSync(join(committed, "tests"))) return committed;
    if (resolve(up, "..") === up) break;
  }
  for (;;) {
    const candidate = join(directory, "shared", "conformance", "bpf_conformance");
    if (existsSync(join(candidate, "tests"))) return candidate;
    const parent = resolve(directory, "..");
    if (parent === directory) return undefined;
    directory = parent;
  }
}

export function parseConformanceFile(text: string): ConformanceFile {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split(/\r?\n/)) {
    const header = /^--\s*(.*?)\s*$/.exec(line);
    if (header) {
      current = [];
      sections.set(header[1]!, current);
      continue;
    }
    current?.push(line);
  }
  const file: ConformanceFile = { memory: new Uint8Array(0) };
  const asm = sections.get("asm");
  if (asm) file.asm = asm.join("\n");
  const memory = sections.get("mem");
  if (memory) file.memory = hexBytes(memory.join(" "));
  const raw = sections.get("raw");
  if (raw) file.raw = rawProgram(raw);
  const result = sections.get("result")?.map((line) => line.replace(/#.*$/, "").trim()).find((line) => line !== "");
  if (result !== undefined) file.result = BigInt.asUintN(64, BigInt(result));
  const error = sections.get("error");
  if (error) file.error = error.join("\n").trim();
  return file;
}

function hexBytes(text: string): Uint8Array {
  const tokens = text.replace(/#.*$/gm, "").split(/\s+/).filter((token) => token !== "");
  return Uint8Array.from(tokens.map((token) => Number.parseInt(token, 16)));
}

/** Either lines of 8 hex bytes, or 0x-prefixed 64-bit little-endian words. */
function rawProgram(lines: string[]): Uint8Array {
  const bytes: number[] = [];
  for (const rawLine of lines) {
    const line = rawLine.replace(/#.*$/, "").trim();
    if (line === "") continue;
    if (/^0x[0-9a-f]+$/i.test(line)) {
      let word = BigInt(line);
      for (let i = 0; i < 8; i++) {
        bytes.push(Number(word & 0xffn));
        word >>= 8n;
      }
    } else {
      bytes.push(...hexBytes(line));
    }
  }
  return Uint8Array.from(bytes);
}

export function readConformanceFile(path: string): ConformanceFile {
  return parseConformanceFile(readFileSync(path, "utf8"));
}
