import { existsSync, mkdirSync, realpathSync, rmdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Option, type Command } from "commander";
import type { Btf } from "../btf/btf.js";
import { Collection } from "../core/collection.js";
import type { BpfMap } from "../core/map.js";
import type { Program } from "../core/program.js";
import { formatVerifierError, verifierReport } from "../core/verifier-report.js";
import { loadCollectionSpec, type CollectionMapSpec, type CollectionProgramSpec, type CollectionSpec } from "../elf/collection-spec.js";
import { decodeWithLayout, findNamedType, jsonFriendly, valueLayout, type ValueLayout } from "../btf/value-layout.js";
import { dataSectionLayout } from "../elf/data-section.js";
import { attachCgroup } from "../link/cgroup.js";
import type { Link } from "../link/link.js";
import { attachRawTracepoint } from "../link/raw-tracepoint.js";
import { attachTcx } from "../link/tcx.js";
import { attachTracepoint } from "../link/tracepoint.js";
import { attachXdp, type XdpMode } from "../link/xdp.js";
import { RingBufferReader } from "../ringbuf/ring-buffer-reader.js";
import { AttachType, MapType, ProgramType } from "../sys/bpf-constants.js";
import { interfaceIndex } from "../sys/socket.js";
import { isOnBpffs } from "../sys/mounts.js";
import { UsageError, VerifierError } from "../sys/errors.js";
import { toJson, writeLine } from "./output.js";

export interface LoadCommandOptions {
  interface?: string;
  direction?: string;
  xdpMode?: string;
  cgroup?: string;
  program: string[];
  set: string[];
  pinPath?: string;
  ringbuf?: string;
  type?: string;
  dump: string[];
  interval?: string;
  duration?: string;
  json?: boolean;
}

const operation = "load";

/** How one program will be attached, decided from its section before anything is loaded. */
export type AttachPlan =
  | { kind: "tc"; direction: "ingress" | "egress"; interface: string }
  | { kind: "xdp"; interface: string; mode: XdpMode | undefined }
  | { kind: "tracepoint"; category: string; name: string }
  | { kind: "rawTracepoint"; name: string }
  | { kind: "cgroup"; cgroup: string; attachType: AttachType }
  | { kind: "none"; reason: string };

const cgroupProgramTypes = new Set<ProgramType>([
  ProgramType.CgroupSkb, ProgramType.CgroupSock, ProgramType.CgroupSockAddr, ProgramType.SockOps,
  ProgramType.CgroupDevice, ProgramType.CgroupSysctl, ProgramType.CgroupSockopt,
]);

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Decides where a program attaches, from its section and the options; throws UsageError when an option it needs is missing. */
export function planAttachment(program: CollectionProgramSpec, options: Pick<LoadCommandOptions, "interface" | "direction" | "xdpMode" | "cgroup">): AttachPlan {
  const where = `program "${program.name}" (section "${program.section}")`;
  switch (program.type) {
    case ProgramType.SchedCls:
    case ProgramType.SchedAct: {
      const direction = program.expectedAttachType === AttachType.TcxEgress ? "egress"
        : program.expectedAttachType === AttachType.TcxIngress ? "ingress"
        : (options.direction ?? "ingress");
      if (direction !== "ingress" && direction !== "egress") throw new UsageError(operation, `--direction must be ingress or egress, got "${direction}"`);
      if (!options.interface) throw new UsageError(operation, `${where} attaches to tc ${direction} of a network interface, and no interface was given`, "name it with -i/--interface IFACE, or leave the program out with --program");
      return { kind: "tc", direction, interface: options.interface };
    }
    case ProgramType.Xdp: {
      if (program.expectedAttachType !== undefined && program.expectedAttachType !== AttachType.Xdp) {
        return { kind: "none", reason: "devmap/cpumap XDP programs run from their map, not from an interface" };
      }
      if (!options.interface) throw new UsageError(operation, `${where} attaches to XDP on a network interface, and no interface was given`, "name it with -i/--interface IFACE, or leave the program out with --program");
      const mode = options.xdpMode;
      if (mode !== undefined && mode !== "native" && mode !== "generic" && mode !== "offload") throw new UsageError(operation, `--xdp-mode must be native, generic or offload, got "${mode}"`);
      return { kind: "xdp", interface: options.interface, mode };
    }
    case ProgramType.Tracepoint: {
      const target = program.attachTarget;
      if (target?.kind !== "tracepoint") return { kind: "none", reason: "the section does not name a tracepoint (use tracepoint/<category>/<name>)" };
      return { kind: "tracepoint", category: target.category, name: target.name };
    }
    case ProgramType.RawTracepoint:
    case ProgramType.RawTracepointWritable: {
      const target = program.attachTarget;
      if (target?.kind !== "rawTracepoint") return { kind: "none", reason: "the section does not name a raw tracepoint (use raw_tp/<name>)" };
      return { kind: "rawTracepoint", name: target.name };
    }
    case ProgramType.Tracing: {
      const target = program.attachTarget;
      if (program.expectedAttachType !== AttachType.TraceRawTp || target?.kind !== "btf") {
        return { kind: "none", reason: "netbpf load attaches tp_btf programs only among Tracing programs (fentry/fexit need trampolines; iter programs are read, not attached)" };
      }
      return { kind: "rawTracepoint", name: target.name };
    }
    case ProgramType.SocketFilter:
      return { kind: "none", reason: "socket filters attach to a socket, which only a program can give (attachSocketFilter)" };
    default:
      if (cgroupProgramTypes.has(program.type)) {
        if (program.expectedAttachType === undefined) return { kind: "none", reason: "the section does not say which cgroup hook" };
        if (!options.cgroup) throw new UsageError(operation, `${where} attaches to a cgroup, and no cgroup was given`, "name a cgroup v2 directory with --cgroup PATH (e.g. /sys/fs/cgroup/unified/my.slice), or leave the program out with --program");
        return { kind: "cgroup", cgroup: options.cgroup, attachType: program.expectedAttachType };
      }
      return { kind: "none", reason: `netbpf load does not attach ${ProgramType[program.type] ?? program.type} programs` };
  }
}

function attach(program: Program, plan: Exclude<AttachPlan, { kind: "none" }>): Link {
  switch (plan.kind) {
    case "tc": return attachTcx(program, { interface: plan.interface, direction: plan.direction });
    case "xdp": return attachXdp(program, plan.mode ? { interface: plan.interface, mode: plan.mode } : { interface: plan.interface });
    case "tracepoint": return attachTracepoint(program, plan.category, plan.name);
    case "rawTracepoint": return attachRawTracepoint(program, plan.name);
    case "cgroup": return attachCgroup(program, { cgroup: plan.cgroup, attachType: plan.attachType });
  }
}

/** Parses `NAME=VALUE` and sets the global variable in the spec (.rodata first, then other data sections). */
export function applySetting(spec: CollectionSpec, setting: string): void {
  const equals = setting.indexOf("=");
  if (equals <= 0) throw new UsageError(operation, `--set "${setting}" is not NAME=VALUE`, "e.g. --set multiplier=3");
  const name = setting.slice(0, equals);
  const text = setting.slice(equals + 1).trim();
  const sections = Object.values(spec.dataSections).sort((a, b) => Number(b.readOnly) - Number(a.readOnly));
  const section = sections.find((s) => s.variables[name]);
  if (!section) {
    const known = sections.flatMap((s) => Object.keys(s.variables));
    throw new UsageError(operation, `--set ${name}: the object has no global variable "${name}"`, known.length ? `variables: ${known.join(", ")}` : "the object has no global variables");
  }
  let value: bigint | boolean;
  if (text === "true" || text === "false") value = text === "true";
  else if (/^-?(0x[0-9a-fA-F]+|0b[01]+|0o[0-7]+|\d+)$/.test(text)) value = text.startsWith("-") ? -BigInt(text.slice(1)) : BigInt(text);
  else throw new UsageError(operation, `--set ${name}=${text}: "${text}" is not an integer or true/false`, "values are decimal, 0x hex, 0b binary or 0o octal integers");
  section.set(name, value);
}

interface Decoder {
  key: ValueLayout | undefined;
  value: ValueLayout | undefined;
}

function mapDecoder(spec: CollectionMapSpec, btf: Btf | undefined): Decoder {
  if (!btf) return { key: undefined, value: undefined };
  if (spec.data) return { key: { kind: "integer", size: 4, signed: false }, value: dataSectionLayout(btf, spec.data, spec.valueSize) };
  const layout = (id: number, size: number) => {
    if (!id || size === 0) return undefined;
    try {
      const found = valueLayout(btf, id);
      return found.size === size ? found : undefined;
    } catch {
      return undefined;
    }
  };
  return { key: layout(spec.btfKeyTypeId, spec.keySize), value: layout(spec.btfValueTypeId, spec.valueSize) };
}

function decodeOrHex(layout: ValueLayout | undefined, bytes: Buffer): unknown {
  return layout ? jsonFriendly(decodeWithLayout(layout, bytes, 0)) : bytes.toString("hex");
}

function dumpMap(name: string, map: BpfMap, decoder: Decoder, json: boolean): void {
  let entries: [Buffer, Buffer | Buffer[]][];
  if (map.type === MapType.Queue || map.type === MapType.Stack) {
    // Reading every element would take them out: show the head only.
    const head = map.peek();
    entries = head ? [[Buffer.alloc(0), head]] : [];
  } else {
    entries = map.lookupBatch();
  }
  if (!json) writeLine(`${name}: ${entries.length} ${entries.length === 1 ? "entry" : "entries"}`);
  for (const [key, value] of entries) {
    const decodedKey = decodeOrHex(decoder.key, key);
    const decodedValue = Array.isArray(value) ? value.map((v) => decodeOrHex(decoder.value, v)) : decodeOrHex(decoder.value, value);
    if (json) writeLine(toJson({ type: "dump", map: name, key: decodedKey, value: decodedValue }));
    else writeLine(`  ${toJson(decodedKey)}: ${toJson(decodedValue)}`);
  }
}

function parseSeconds(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError(operation, `${option} "${text}" is not a positive number of seconds`);
  return seconds;
}

function status(json: boolean, record: Record<string, unknown>, text: string): void {
  if (json) writeLine(toJson(record));
  else process.stderr.write(`${text}\n`);
}

/** Largest object file `load` reads (eBPF objects are kilobytes to a few megabytes). */
export const maximumObjectSize = 256 * 1024 * 1024;

/** Refuses what is not a regular file of a sane size before reading a byte of it (a device like /dev/zero would never end). */
export function checkObjectFile(objectFile: string): void {
  let status;
  try {
    status = statSync(objectFile);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UsageError(operation, `${objectFile} does not exist`, "give the path of a clang-built eBPF object");
    throw new UsageError(operation, `cannot read ${objectFile}: ${code ?? String(error)}`, "give the path of a clang-built eBPF object");
  }
  if (!status.isFile()) {
    const kind = status.isDirectory() ? "a directory" : status.isCharacterDevice() ? "a character device" : status.isBlockDevice() ? "a block device" : status.isFIFO() ? "a FIFO" : status.isSocket() ? "a socket" : "not a regular file";
    throw new UsageError(operation, `${objectFile} is ${kind}, not an object file`, "give the path of a clang-built eBPF object");
  }
  if (status.size > maximumObjectSize) {
    throw new UsageError(operation, `${objectFile} is ${status.size} bytes long, larger than any eBPF object (limit ${maximumObjectSize} bytes)`, "give the path of a clang-built eBPF object");
  }
}

/**
 * Checks --pin-path before anything is created: it must lie on bpffs (its
 * nearest existing folder, symbolic links resolved). Returns the folders
 * that do not exist yet, outermost first.
 */
export function checkPinPath(pinPath: string): string[] {
  const missing: string[] = [];
  let existing = resolve(pinPath);
  for (;;) {
    try {
      const status = statSync(existing);
      if (!status.isDirectory()) throw new UsageError(operation, `--pin-path ${pinPath}: ${existing} is not a directory`, "give a folder on bpffs, e.g. /sys/fs/bpf/NAME");
      break;
    } catch (error) {
      if (error instanceof UsageError) throw error;
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw new UsageError(operation, `--pin-path ${pinPath}: cannot reach ${existing}: ${(error as NodeJS.ErrnoException).code}`);
      missing.unshift(existing);
      const parent = dirname(existing);
      if (parent === existing) break;
      existing = parent;
    }
  }
  const real = realpathSync(existing);
  if (!isOnBpffs(real)) throw new UsageError(operation, `--pin-path ${pinPath} is not on a bpffs file system (${real} is not)`, "give a folder under a bpffs mount, e.g. /sys/fs/bpf/NAME");
  return missing;
}

export async function runLoadCommand(objectFile: string, options: LoadCommandOptions): Promise<void> {
  const json = Boolean(options.json);
  checkObjectFile(objectFile);
  // Nothing is created when the pin path is wrong; folders created for it are private (0700).
  const pinFolders = options.pinPath !== undefined ? checkPinPath(options.pinPath) : [];
  const spec = loadCollectionSpec(objectFile);
  const btf = spec.parsedBtf;
  const duration = parseSeconds(options.duration, "--duration");
  const interval = parseSeconds(options.interval, "--interval");

  const selected = options.program.length ? options.program : Object.keys(spec.programs);
  for (const name of selected) {
    if (!spec.programs[name]) {
      throw new UsageError(operation, `the object has no program "${name}"`, `programs: ${Object.keys(spec.programs).join(", ") || "none"}`);
    }
  }
  const plans = new Map(selected.map((name) => [name, planAttachment(spec.programs[name]!, options)]));
  for (const plan of plans.values()) {
    // An unknown interface is reported before anything is loaded.
    if (plan.kind === "tc" || plan.kind === "xdp") interfaceIndex(plan.interface, operation);
  }
  for (const setting of options.set) applySetting(spec, setting);

  const checkMap = (name: string, option: string) => {
    const map = spec.maps[name];
    if (!map) throw new UsageError(operation, `${option} ${name}: the object has no map "${name}"`, `maps: ${Object.keys(spec.maps).join(", ")}`);
    return map;
  };
  let eventLayout: ValueLayout | undefined;
  if (!options.ringbuf) {
    // Like a libbpf tool's main loop: an object with exactly one ring buffer streams it.
    const ringBuffers = Object.values(spec.maps).filter((map) => map.type === MapType.Ringbuf);
    if (ringBuffers.length === 1) options = { ...options, ringbuf: ringBuffers[0]!.name };
  }
  if (options.ringbuf) {
    const map = checkMap(options.ringbuf, "--ringbuf");
    if (map.type !== MapType.Ringbuf) throw new UsageError(operation, `--ringbuf ${options.ringbuf}: the map is a ${MapType[map.type] ?? map.type} map, not a Ringbuf`);
    if (options.type) {
      if (!btf) throw new UsageError(operation, `--type ${options.type}: the object has no BTF to find the type in`, "rebuild it with clang -g, or leave --type out for hex");
      eventLayout = valueLayout(btf, findNamedType(btf, options.type, operation));
    }
  } else if (options.type) {
    throw new UsageError(operation, "--type names the struct of --ringbuf events; give --ringbuf MAP too");
  }
  for (const name of options.dump) {
    const map = checkMap(name, "--dump");
    if (map.type === MapType.Ringbuf || map.type === MapType.UserRingbuf || map.type === MapType.PerfEventArray) {
      throw new UsageError(operation, `--dump ${name}: a ${MapType[map.type]} map streams events and has no elements to dump`, map.type === MapType.Ringbuf ? "use --ringbuf" : undefined);
    }
  }
  if (interval !== undefined && options.dump.length === 0) throw new UsageError(operation, "--interval says how often to print the --dump maps; give --dump MAP too");

  let collection: Collection;
  for (const folder of pinFolders) mkdirSync(folder, { mode: 0o700 });
  try {
    collection = Collection.load(spec, { pinPath: options.pinPath, programs: selected });
  } catch (error) {
    // The folders made for pins go again when loading failed (rmdir: only while empty).
    for (const folder of [...pinFolders].reverse()) {
      try {
        rmdirSync(folder);
      } catch {
        break;
      }
    }
    if (!(error instanceof VerifierError)) throw error;
    const program = /program "([^"]+)"/.exec(error.message)?.[1];
    const lineInfo = program ? spec.programs[program]?.lineInfo : undefined;
    if (json) {
      writeLine(toJson({ type: "verifier-rejection", program, ...verifierReport(error, { lineInfo }).toJSON() }));
    } else {
      process.stderr.write(`netbpf: the kernel's verifier rejected ${program ? `program "${program}"` : "a program"}\n\n`);
      process.stderr.write(`${formatVerifierError(error, { lineInfo }) ?? error.message}\n`);
    }
    process.exitCode = 1;
    return;
  }

  const links: Link[] = [];
  let reader: RingBufferReader | undefined;
  let timer: NodeJS.Timeout | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let keepAlive: NodeJS.Timeout | undefined;
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  const decoders = new Map(options.dump.map((name) => [name, mapDecoder(spec.maps[name]!, btf)]));
  const dumpAll = () => {
    for (const name of options.dump) dumpMap(name, collection.maps[name]!, decoders.get(name)!, json);
  };
  let events = 0;
  try {
    status(json, { type: "loaded", object: objectFile, programs: selected, maps: Object.keys(collection.maps), btf: collection.report.btfLoaded, pins: { ...collection.report.reusedPins, ...collection.report.createdPins } },
      `loaded ${objectFile}: ${selected.length} program(s), ${Object.keys(collection.maps).length} map(s)${collection.report.btfLoaded ? "" : ` (without BTF: ${collection.report.btfProblem})`}`);
    for (const [name, plan] of plans) {
      const section = spec.programs[name]!.section;
      if (plan.kind === "none") {
        status(json, { type: "not-attached", program: name, section, reason: plan.reason }, `not attached: ${name} (section "${section}"): ${plan.reason}`);
        continue;
      }
      const link = attach(collection.programs[name]!, plan);
      links.push(link);
      status(json, { type: "attached", program: name, section, hook: link.description, linkId: link.isBpfLink ? link.id : undefined },
        `attached ${name}: ${link.description}`);
    }
    if (duration !== undefined) timer = setTimeout(stop, duration * 1000);
    // Nothing else may hold the event loop open (attached programs are kernel objects): run until Ctrl-C.
    else keepAlive = setInterval(() => {}, 1 << 30);
    if (interval !== undefined) ticker = setInterval(dumpAll, interval * 1000);
    const mapName = options.ringbuf;
    if (mapName) {
      reader = new RingBufferReader(collection.maps[mapName]!);
      for await (const record of reader.records({ signal: controller.signal })) {
        events++;
        const value = eventLayout
          ? (record.length >= eventLayout.size ? jsonFriendly(decodeWithLayout(eventLayout, record, 0)) : { short: record.toString("hex") })
          : { hex: record.toString("hex") };
        writeLine(json ? toJson({ type: "event", map: mapName, value }) : toJson(value));
      }
    } else if (!controller.signal.aborted) {
      await new Promise<void>((resolve) => controller.signal.addEventListener("abort", () => resolve(), { once: true }));
    }
    if (options.dump.length) dumpAll();
    status(json, { type: "stopped", events }, mapName ? `stopped after ${events} event(s)` : "stopped");
  } finally {
    clearTimeout(timer);
    clearInterval(ticker);
    clearInterval(keepAlive);
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    reader?.close();
    for (const link of links.reverse()) {
      try {
        link.close();
      } catch (error) {
        process.stderr.write(`netbpf: detaching ${link.description} failed: ${(error as Error).message}\n`);
      }
    }
    collection.close();
  }
}

export function registerLoadCommand(program: Command): void {
  program.command("load <object>")
    .description("load a clang-built object, attach its programs where their sections say, stream events and dump maps")
    .option("-i, --interface <name>", "network interface for tc and XDP programs")
    // Choices are checked when the options are read, even when no program needs them.
    .addOption(new Option("--direction <direction>", "tc direction for sections that do not say (\"tc\", \"classifier\")").choices(["ingress", "egress"]).default("ingress"))
    .addOption(new Option("--xdp-mode <mode>", "XDP mode (default: native, falling back to generic)").choices(["native", "generic", "offload"]))
    .option("--cgroup <path>", "cgroup v2 directory for cgroup programs")
    .option("-p, --program <name>", "load and attach only this program; repeatable", collect, [])
    .option("--set <name=value>", "set a global variable (a .rodata constant) before loading; repeatable", collect, [])
    .option("--pin-path <dir>", "bpffs folder for maps pinned by name (LIBBPF_PIN_BY_NAME)")
    .option("--ringbuf <map>", "stream this ring buffer's events as JSON lines (default: the object's only ring buffer, if it has one)")
    .option("-t, --type <struct>", "decode --ringbuf events as this struct from the object's BTF (default: hex)")
    .option("--dump <map>", "print this map's contents when stopping; repeatable", collect, [])
    .option("--interval <seconds>", "also print the --dump maps every this many seconds")
    .option("--duration <seconds>", "stop after this long (default: at Ctrl-C)")
    .option("--json", "every line on standard output is a JSON object (status, events, dumps)")
    .action(async (objectFile: string, options: LoadCommandOptions) => {
      await runLoadCommand(objectFile, options);
    });
}
