/** A tracepoint's record layout, read from tracefs (…/events/<category>/<name>/format). */
import { readFileSync } from "node:fs";
import { argumentError, expectString } from "./argument-checks.js";
import { errnoNumber, NetbpfError, SyscallError, UsageError } from "./errors.js";
import { tracefsPath } from "./mounts.js";

export interface TracepointField {
  name: string;
  /** The C declaration as tracefs prints it, e.g. "__u8 saddr[4]". */
  declaration: string;
  offset: number;
  size: number;
  signed: boolean;
  /** Element count for array fields (e.g. 4 for `__u8 saddr[4]`). */
  arrayLength?: number;
}

export interface TracepointFormat {
  category: string;
  name: string;
  id: number;
  fields: Map<string, TracepointField>;
  /** Size of the record: the end of its last field. */
  size: number;
}

const namePattern = /^[A-Za-z0-9_]+$/;

export function parseTracepointFormat(category: string, name: string, text: string): TracepointFormat {
  expectString("read tracepoint format", "category", category);
  expectString("read tracepoint format", "name", name);
  expectString("read tracepoint format", "text", text);
  const idMatch = /^ID:\s*(\d+)/m.exec(text);
  if (!idMatch) throw new NetbpfError("read tracepoint format", `${category}:${name}: the format has no ID line`);
  const fields = new Map<string, TracepointField>();
  let size = 0;
  for (const match of text.matchAll(/field:([^;]+);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);/g)) {
    const declaration = match[1]!.trim();
    const nameMatch = /([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(\d*)\])?$/.exec(declaration);
    if (!nameMatch) continue;
    const field: TracepointField = { name: nameMatch[1]!, declaration, offset: Number(match[2]), size: Number(match[3]), signed: match[4] === "1" };
    if (nameMatch[2]) field.arrayLength = Number(nameMatch[2]);
    fields.set(field.name, field);
    size = Math.max(size, field.offset + field.size);
  }
  return { category, name, id: Number(idMatch[1]), fields, size };
}

/** Reads and parses a tracepoint's format; an unknown tracepoint is a clear error. */
export function readTracepointFormat(category: string, name: string): TracepointFormat {
  expectString("read tracepoint format", "category", category);
  expectString("read tracepoint format", "name", name);
  if (!namePattern.test(category) || !namePattern.test(name)) {
    throw new UsageError("read tracepoint format", `"${category}:${name}" is not a tracepoint name`, "names look like sock:inet_sock_set_state");
  }
  const path = `${tracefsPath()}/events/${category}/${name}/format`;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EPERM") {
      throw new SyscallError("read tracepoint format", errnoNumber(code), "run as root, or grant CAP_BPF and CAP_PERFMON with read access to tracefs", path);
    }
    throw new UsageError("read tracepoint format", `no tracepoint ${category}:${name}`, `see ${tracefsPath()}/events for the tracepoints this kernel has`);
  }
  return parseTracepointFormat(category, name, text);
}

/** The field of a parsed format (the programs generated from a format start by asking for one, which checks the format). */
export function requireField(format: TracepointFormat, field: string): TracepointField {
  const given = format as Partial<TracepointFormat> | null;
  if (typeof given !== "object" || given === null || typeof given.category !== "string" || typeof given.name !== "string" || !(given.fields instanceof Map)) {
    throw argumentError("read tracepoint format", "format", "a TracepointFormat (from readTracepointFormat)", format);
  }
  expectString("read tracepoint format", "field", field);
  const found = format.fields.get(field);
  if (!found) throw new NetbpfError("read tracepoint format", `${format.category}:${format.name} has no field "${field}"`, `its fields: ${[...format.fields.keys()].join(", ")}`);
  return found;
}
