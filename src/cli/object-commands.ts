import type { Command } from "commander";
import { BpfMap } from "../core/map.js";
import { listLinks, listMaps, listPrograms } from "../core/loaded-objects.js";
import { Program } from "../core/program.js";
import { mapDecoder } from "../core/map-btf.js";
import { AttachType, BpfLinkType, MapType, ProgramType } from "../sys/bpf-constants.js";
import { UsageError } from "../sys/errors.js";
import { libcIfIndexToName } from "../sys/libc.js";
import { renderTable, toJson, writeLine } from "./output.js";

function parseId(text: string, what: string): number {
  const id = Number(text);
  if (!Number.isInteger(id) || id <= 0) throw new UsageError(`${what} show`, `"${text}" is not an id`, `ids are positive integers; see \`netbpf ${what} list\``);
  return id;
}

function ifname(index: number | undefined): string {
  if (!index) return "";
  return libcIfIndexToName(index, Buffer.alloc(16)) ?? String(index);
}

function programRow(p: ReturnType<typeof listPrograms>[number]) {
  return { id: p.id, type: ProgramType[p.type] ?? p.type, name: p.name, tag: p.tag, translatedBytes: p.translatedSize, jitedBytes: p.jitedSize, mapIds: p.mapIds, gplCompatible: p.gplCompatible, btfId: p.btfId, runCount: p.runCount, runTimeNs: p.runTimeNs, verifiedInstructions: p.verifiedInstructions };
}

function mapRow(m: ReturnType<typeof listMaps>[number]) {
  return { id: m.id, type: MapType[m.type] ?? m.type, name: m.name, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries, flags: m.flags, btfId: m.btfId };
}

/** Which way traffic flows through the hook of an attach type, where that is a property of the hook. */
function attachDirection(attachType: number | undefined, linkType: number): "ingress" | "egress" | undefined {
  if (linkType === BpfLinkType.Xdp) return "ingress";
  switch (attachType) {
    case AttachType.TcxIngress:
    case AttachType.CgroupInetIngress:
      return "ingress";
    case AttachType.TcxEgress:
    case AttachType.CgroupInetEgress:
      return "egress";
    default:
      return undefined;
  }
}

const perfEventTypeNames: Record<number, string> = { 1: "uprobe", 2: "uretprobe", 3: "kprobe", 4: "kretprobe", 5: "tracepoint", 6: "event" };

function linkRow(l: ReturnType<typeof listLinks>[number]) {
  return {
    id: l.id, type: BpfLinkType[l.type] ?? l.type, programId: l.programId, interface: ifname(l.ifindex),
    attachType: l.attachType === undefined ? undefined : (AttachType[l.attachType] ?? l.attachType),
    direction: attachDirection(l.attachType, l.type), cgroupId: l.cgroupId,
    perfEvent: l.perfEventType === undefined ? undefined : (perfEventTypeNames[l.perfEventType] ?? l.perfEventType), tracepoint: l.tracepointName,
  };
}

/** Where a link is attached, in a few words: "lo ingress", "tracepoint inet_sock_set_state", "cgroup 1234 egress". */
function linkTarget(r: ReturnType<typeof linkRow>): string {
  const direction = r.direction ? ` ${r.direction}` : "";
  if (r.interface) return `${r.interface}${direction}`;
  if (r.tracepoint !== undefined) return `${r.type === "RawTracepoint" ? "raw tracepoint" : "tracepoint"} ${r.tracepoint}`;
  if (r.cgroupId !== undefined) return `cgroup ${r.cgroupId}${direction}`;
  if (r.perfEvent !== undefined) return String(r.perfEvent);
  return "";
}

function hex(buffer: Buffer): string {
  return buffer.toString("hex").replace(/(..)(?!$)/g, "$1 ");
}

export function registerObjectCommands(program: Command): void {
  const prog = program.command("prog").description("programs loaded in the kernel");
  prog.command("list").description("list every loaded program").option("--json", "one JSON object per line")
    .action((options: { json?: boolean }) => {
      const rows = listPrograms().map(programRow);
      if (options.json) return rows.forEach((r) => writeLine(toJson(r)));
      writeLine(renderTable(["id", "type", "name", "tag", "xlated", "jited", "maps"], rows.map((r) => [r.id, r.type, r.name, r.tag, r.translatedBytes, r.jitedBytes, r.mapIds.join(",")])));
    });
  prog.command("show <id>").description("details of one program").option("--json", "one JSON object")
    .action((idText: string, options: { json?: boolean }) => {
      using p = Program.fromId(parseId(idText, "prog"));
      const row = programRow(p.info());
      if (options.json) return writeLine(toJson(row));
      for (const [k, v] of Object.entries(row)) writeLine(`${k.padEnd(22)}${Array.isArray(v) ? v.join(",") : String(v)}`);
    });

  const map = program.command("map").description("maps loaded in the kernel");
  map.command("list").description("list every map").option("--json", "one JSON object per line")
    .action((options: { json?: boolean }) => {
      const rows = listMaps().map(mapRow);
      if (options.json) return rows.forEach((r) => writeLine(toJson(r)));
      writeLine(renderTable(["id", "type", "name", "key", "value", "max"], rows.map((r) => [r.id, r.type, r.name, r.keySize, r.valueSize, r.maxEntries])));
    });
  map.command("show <id>").description("details of one map").option("--json", "one JSON object")
    .action((idText: string, options: { json?: boolean }) => {
      using m = BpfMap.fromId(parseId(idText, "map"));
      const row = mapRow(m.info());
      if (options.json) return writeLine(toJson(row));
      for (const [k, v] of Object.entries(row)) writeLine(`${k.padEnd(12)}${String(v)}`);
    });
  map.command("dump <id>").description("every key and value of a map, decoded with its BTF when it has one, else hex")
    .option("--json", "one JSON object per element")
    .option("--raw", "hex even when the map has BTF")
    .action((idText: string, options: { json?: boolean; raw?: boolean }) => {
      using m = BpfMap.fromId(parseId(idText, "map"));
      if (m.type === MapType.Ringbuf || m.type === MapType.UserRingbuf || m.type === MapType.PerfEventArray) {
        throw new UsageError("map dump", `map ${idText} is a ${MapType[m.type]}: it streams events and has no elements to dump`);
      }
      if (m.type === MapType.Queue || m.type === MapType.Stack) {
        const value = m.peek();
        if (options.json) return value && writeLine(toJson({ head: value.toString("hex") }));
        return writeLine(value ? `head: ${hex(value)}` : "empty");
      }
      const decoder = options.raw ? undefined : mapDecoder(m.info());
      let elements = 0;
      for (const [key, value] of m.lookupBatch()) {
        elements++;
        const values = Array.isArray(value) ? value : [value];
        if (decoder?.dataSection !== undefined) {
          // A global data section: its variables, by name, as bpftool shows them (the key is always 0).
          const variables = decoder.value(values[0]!);
          if (options.json) writeLine(toJson({ section: decoder.dataSection, variables }));
          else for (const [name, variable] of Object.entries(variables as Record<string, unknown>)) writeLine(`${decoder.dataSection} ${name} = ${toJson(variable)}`);
        } else if (options.json) {
          const show = (b: Buffer) => (decoder ? decoder.value(b) : b.toString("hex"));
          writeLine(toJson({ key: decoder ? decoder.key(key) : key.toString("hex"), value: m.perCpu ? values.map(show) : show(values[0]!) }));
        } else if (decoder) {
          writeLine(`key: ${toJson(decoder.key(key))}  value: ${values.map((v) => toJson(decoder.value(v))).join(" | ")}`);
        } else {
          writeLine(`key: ${hex(key)}  value: ${values.map(hex).join(" | ")}`);
        }
      }
      // People are told; --json prints nothing for no elements.
      if (elements === 0 && !options.json) writeLine(`map ${m.id}${m.name ? ` (${m.name})` : ""} is empty`);
    });

  const link = program.command("link").description("links in the kernel");
  link.command("list").description("list every link").option("--json", "one JSON object per line")
    .action((options: { json?: boolean }) => {
      const rows = listLinks().map(linkRow);
      if (options.json) return rows.forEach((r) => writeLine(toJson(r)));
      writeLine(renderTable(["id", "type", "prog", "attach type", "target"], rows.map((r) => [r.id, r.type, r.programId, r.attachType ?? "", linkTarget(r)])));
    });
}
