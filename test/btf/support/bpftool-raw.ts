import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** One type as `bpftool btf dump file X format raw` prints it. */
export interface RawType {
  id: number;
  kind: string;
  name: string;
  fields: Record<string, string>;
  /** Member / value / parameter lines: name plus key=value pairs. */
  entries: { name: string; fields: Record<string, string> }[];
}

export const fixtureDirectory = fileURLToPath(new URL("../../../../test/btf/fixtures/", import.meta.url));

export function bpftoolAvailable(): boolean {
  try {
    execFileSync("bpftool", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function parseFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const match of text.matchAll(/([a-z_]+)=(\([^)]*\)|\S+?)(?:,|\s|$)/g)) fields[match[1]!] = match[2]!;
  return fields;
}

/** Run bpftool on a BTF file and parse its raw dump. */
export function bpftoolRawDump(path: string, base?: string): Map<number, RawType> {
  const args = ["btf", "dump", "file", path, "format", "raw"];
  if (base) args.splice(0, 0, "--base-btf", base);
  const output = execFileSync("bpftool", args, { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  const types = new Map<number, RawType>();
  let current: RawType | undefined;
  for (const line of output.split("\n")) {
    const header = /^\[(\d+)\] (\w+) '([^']*)'(.*)$/.exec(line);
    if (header) {
      current = { id: Number(header[1]), kind: header[2]!, name: header[3] === "(anon)" ? "" : header[3]!, fields: parseFields(header[4]!), entries: [] };
      types.set(current.id, current);
      continue;
    }
    const entry = /^\t(?:'([^']*)' )?(.*)$/.exec(line);
    if (entry && current) current.entries.push({ name: entry[1] === undefined || entry[1] === "(anon)" ? "" : entry[1], fields: parseFields(entry[2]!) });
  }
  return types;
}
