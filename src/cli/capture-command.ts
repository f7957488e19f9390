import { readFileSync, statSync, writeSync } from "node:fs";
import { Command, Option } from "commander";
import { helperNameOf } from "../asm/helpers.js";
import { compileCaptureFilter } from "../capture/capture-filter.js";
import type * as LiveCaptureModule from "../capture/live-capture.js";
import type { CaptureDirection, LiveCaptureInterface, LivePacket } from "../capture/live-capture.js";
import { CaptureOutput } from "../capture/capture-output.js";
import { OfflineFilter } from "../capture/offline-filter.js";
import { PacketSummarizer, type SummaryOptions, type SummaryPacket } from "../capture/packet-summary.js";
import { formatFilterProgram } from "../filter/format-filter-program.js";
import { createCaptureWriter, openCapture, captureFormatFromPath } from "../pcap/capture-file.js";
import { CaptureFormatError } from "../pcap/capture-format-error.js";
import { StreamSink, type CaptureSink } from "../pcap/capture-sink.js";
import { drained } from "../pcap/drained.js";
import { writePacketBytesUnchecked } from "../pcap/capture-writer.js";
import type { CapturePacket } from "../pcap/capture-record.js";
import { LinkType, linkTypeName } from "../pcap/link-type.js";
import { PcapScanner, pcapRecordTimeWords, type PcapScanRecord } from "../pcap/pcap-scanner.js";
import type { PcapngWriter } from "../pcap/pcapng-writer.js";
import type { PcapWriter } from "../pcap/pcap-writer.js";
import { captureProgram, defaultSnapLength, maximumSnapLength } from "../programs/capture-program.js";
import { ProgramType } from "../sys/bpf-constants.js";
import { NetbpfError, SyscallError, UsageError } from "../sys/errors.js";
import type * as NetworkInterfacesModule from "../sys/network-interfaces.js";
import type { NetworkInterface } from "../sys/network-interfaces.js";
import { toJson } from "./output.js";

// The live capture's modules (the FFI, maps, programs, links, netlink) load only for live captures,
// -D and -d (loadLiveModules): `capture -r` starts without them.
type LiveCapture = LiveCaptureModule.LiveCapture;
let LiveCapture: typeof LiveCaptureModule.LiveCapture;
let defaultRingSize: number;
let interfaceLinkType: typeof LiveCaptureModule.interfaceLinkType;
let interfaceHasVlanTags: typeof LiveCaptureModule.interfaceHasVlanTags;
let InterfaceFlag: typeof NetworkInterfacesModule.InterfaceFlag;
let interfaceLinkDetected: typeof NetworkInterfacesModule.interfaceLinkDetected;
let listNetworkInterfaces: typeof NetworkInterfacesModule.listNetworkInterfaces;

async function loadLiveModules(): Promise<void> {
  const [live, interfaces] = await Promise.all([import("../capture/live-capture.js"), import("../sys/network-interfaces.js")]);
  ({ LiveCapture, defaultRingSize, interfaceLinkType, interfaceHasVlanTags } = live);
  ({ InterfaceFlag, interfaceLinkDetected, listNetworkInterfaces } = interfaces);
}

interface CaptureCommandOptions {
  interface?: string[];
  write?: string;
  read?: string;
  count?: string;
  snapshotLength?: string;
  direction?: string;
  n?: boolean;
  e?: boolean;
  x?: boolean;
  X?: boolean;
  /** How many times -v was given. */
  verbose?: number;
  json?: boolean;
  dump?: boolean;
  bufferSize?: string;
  process?: boolean;
  /** -t given this many times. */
  t?: number;
  q?: boolean;
  S?: boolean;
  A?: boolean;
  l?: boolean;
  packetBuffered?: boolean;
  listInterfaces?: boolean;
  F?: string;
  C?: string;
  G?: string;
  W?: string;
}

const operation = "capture";

/** tcpdump's names for link types in its "link-type" messages. */
const linkTypeDescriptions: Record<number, string> = {
  [LinkType.ETHERNET]: "EN10MB (Ethernet)",
  [LinkType.RAW]: "RAW (Raw IP)",
  [LinkType.LINUX_SLL]: "LINUX_SLL (Linux cooked v1)",
  [LinkType.LINUX_SLL2]: "LINUX_SLL2 (Linux cooked v2)",
};

/**
 * The hooks the capture runs at: "tcx ingress+egress", or per interface where they differ. Loopback, capturing both
 * directions, is hooked at ingress only (every packet on it passes both): said so, as the user asked for both.
 */
function describeHooks(interfaces: readonly LiveCaptureInterface[], direction: CaptureDirection): string {
  const describe = (hooks: readonly string[]) => `tcx ${hooks.join("+")}${direction === "inout" && hooks.length === 1 ? " (loopback: each packet once)" : ""}`;
  const first = describe(interfaces[0]!.hooks);
  if (interfaces.every((i) => describe(i.hooks) === first)) return first;
  return interfaces.map((i) => `${i.name}: ${describe(i.hooks)}`).join("; ");
}

function describeLinkType(linkType: number): string {
  return linkTypeDescriptions[linkType] ?? linkTypeName(linkType);
}

function parseCount(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const count = Number(text);
  if (!Number.isInteger(count) || count <= 0) throw new UsageError(operation, `-c needs a positive packet count, got "${text}"`);
  return count;
}

function parseSnapLength(text: string | undefined): number {
  if (text === undefined) return defaultSnapLength;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > maximumSnapLength) {
    throw new UsageError(operation, `-s needs a snapshot length of 0-${maximumSnapLength} bytes, got "${text}"`, "0 means the default, 262144, as in tcpdump");
  }
  return value === 0 ? defaultSnapLength : value;
}

function parseDirection(text: string | undefined): CaptureDirection {
  if (text === undefined) return "inout";
  if (text === "in" || text === "out" || text === "inout") return text;
  throw new UsageError(operation, `-Q takes in, out or inout, got "${text}"`);
}

function parseBufferSize(text: string | undefined): number {
  if (text === undefined) return defaultRingSize;
  const kibibytes = Number(text);
  if (!Number.isInteger(kibibytes) || kibibytes <= 0 || kibibytes > 1024 * 1024) {
    throw new UsageError(operation, `-B needs a ring buffer size in KiB (1-1048576), got "${text}"`);
  }
  return kibibytes * 1024;
}

const timestampFormats = ["time", "none", "epoch", "delta", "date", "since-first"] as const;

function summaryOptions(options: CaptureCommandOptions): SummaryOptions {
  const t = options.t ?? 0;
  if (t > 5) throw new UsageError(operation, `-t can be given at most five times (-ttttt), got ${t}`);
  return {
    linkLevel: options.e === true,
    verbose: (options.verbose ?? 0) > 0,
    hexDump: options.X ? "hex-ascii" : options.x ? "hex" : options.A ? "ascii" : undefined,
    timestampFormat: timestampFormats[t],
    quiet: options.q === true,
    absoluteSequence: options.S === true,
  };
}

/** -F: the filter expression from a file, "#" comments removed (as tcpdump reads it). */
function readFilterFile(path: string): string {
  let text: string;
  try {
    const status = statSync(path);
    if (!status.isFile()) throw new UsageError(operation, `-F ${path} is not a regular file`, "give a file holding a filter expression");
    if (status.size > 1024 * 1024) throw new UsageError(operation, `-F ${path} is ${status.size} bytes long, more than a filter expression can be (1 MiB)`);
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (error instanceof NetbpfError) throw error;
    throw new UsageError(operation, `cannot read the filter file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, "check the path");
  }
  return text.replace(/#[^\n]*/g, " ").replace(/\s+/g, " ").trim();
}

function parsePositive(text: string | undefined, option: string, what: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new UsageError(operation, `${option} needs ${what}, got "${text}"`);
  return value;
}

/** -C in tcpdump's units: millions of bytes, or with a k, m or g suffix (1024-based). */
function parseFileSize(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d+)([kmg]?)$/i.exec(text);
  const value = match ? Number(match[1]) : Number.NaN;
  if (!match || !Number.isSafeInteger(value) || value <= 0) throw new UsageError(operation, `-C needs a file size in millions of bytes (or with k, m or g), got "${text}"`);
  const unit = match[2]!.toLowerCase();
  return value * (unit === "k" ? 1024 : unit === "m" ? 1024 * 1024 : unit === "g" ? 1024 * 1024 * 1024 : 1_000_000);
}

/** The -w output with -C/-G/-W, opened now (before anything is captured); undefined without -w. */
function openOutput(options: CaptureCommandOptions): CaptureOutput | undefined {
  const rotateBytes = parseFileSize(options.C);
  const rotateSeconds = parsePositive(options.G, "-G", "a number of seconds");
  const fileCount = parsePositive(options.W, "-W", "a number of files");
  if ((rotateBytes !== undefined || rotateSeconds !== undefined || fileCount !== undefined) && (options.write === undefined || options.write === "-")) {
    throw new UsageError(operation, "-C, -G and -W rotate the files of -w FILE", "add -w FILE");
  }
  if (fileCount !== undefined && rotateBytes === undefined && rotateSeconds === undefined) throw new UsageError(operation, "-W limits the files of -C or -G", "add -C SIZE or -G SECONDS");
  if (options.write === undefined) return undefined;
  return new CaptureOutput({ target: options.write, rotateBytes, rotateSeconds, fileCount });
}

/** SIGINT, SIGTERM and SIGHUP (a closed terminal) all stop a capture the same way, keeping what was captured. */
const stopSignals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

function onStopSignals(stop: () => void): () => void {
  for (const signal of stopSignals) process.once(signal, stop);
  return () => {
    for (const signal of stopSignals) process.removeListener(signal, stop);
  };
}

/** Writes to standard output, waiting while a slow reader has not taken what was written before (memory stays bounded). */
async function print(text: string): Promise<void> {
  if (!process.stdout.write(text)) await drained(process.stdout);
}

/** libpcap's flags text in `tcpdump -D`. */
function interfaceFlagsText(networkInterface: NetworkInterface): string {
  const words: string[] = [];
  if (networkInterface.flags & InterfaceFlag.Up) words.push("Up");
  if (networkInterface.flags & InterfaceFlag.Running) words.push("Running");
  if (networkInterface.flags & InterfaceFlag.Loopback) words.push("Loopback");
  else {
    const detected = interfaceLinkDetected(networkInterface.name);
    if (detected !== undefined) words.push(detected ? "Connected" : "Disconnected");
  }
  return words.length > 0 ? words.join(", ") : "none";
}

/** -D: the interfaces to capture on, numbered and ordered as tcpdump -D does (running, up, connected first; loopback later). */
function listInterfaces(): void {
  const entries = listNetworkInterfaces().map((networkInterface) => {
    const flags = interfaceFlagsText(networkInterface);
    let rank = 0;
    if (!(networkInterface.flags & InterfaceFlag.Running)) rank |= 8;
    if (!(networkInterface.flags & InterfaceFlag.Up)) rank |= 4;
    if (flags.includes("Disconnected")) rank |= 2;
    if (networkInterface.flags & InterfaceFlag.Loopback) rank |= 1;
    return { text: `${networkInterface.name} [${flags}]`, rank };
  });
  entries.push({ text: "any (every interface that is up: a program in each one's data path) [Up, Running]", rank: 0.5 });
  const sorted = entries.map((entry, order) => ({ ...entry, order })).sort((a, b) => a.rank - b.rank || a.order - b.order);
  process.stdout.write(sorted.map((entry, index) => `${index + 1}.${entry.text}\n`).join(""));
}

/** The refusal when no interface was named, listing the candidates. */
function noInterfaceError(): UsageError {
  const names = listNetworkInterfaces().map((i) => `${i.name}${i.flags & InterfaceFlag.Up ? "" : " (down)"}`).join(", ");
  return new UsageError(operation, "name the interface to capture on with -i", `netbpf puts a program in the interface's data path; interfaces: ${names}; -i any takes every one that is up`);
}

/**
 * A line on standard error, written straight to the descriptor (as process.stderr
 * does for files, pipes and terminals on Linux, so lines stay in order): the
 * "listening" line goes out before Node's stream modules load.
 */
function stderr(text: string): void {
  try {
    writeSync(2, `${text}\n`);
  } catch {
    process.stderr.write(`${text}\n`);
  }
}

/** One JSON object per packet; the field names are stable. */
function packetJson(fields: {
  timestamp: bigint;
  interfaceName?: string;
  direction?: "inbound" | "outbound";
  originalLength: number;
  data: Buffer;
  linkType: number;
  process?: { pid: number; command: string };
  summary: string;
  includeData: boolean;
}): string {
  const seconds = fields.timestamp / 1_000_000_000n;
  const nanoseconds = fields.timestamp % 1_000_000_000n;
  return toJson({
    timestamp: `${seconds}.${String(nanoseconds).padStart(9, "0")}`,
    interface: fields.interfaceName ?? null,
    direction: fields.direction ?? null,
    length: fields.originalLength,
    capturedLength: fields.data.length,
    linkType: linkTypeName(fields.linkType),
    process: fields.process ?? null,
    summary: fields.summary,
    ...(fields.includeData ? { data: fields.data.toString("hex") } : {}),
  });
}

export function registerCaptureCommand(program: Command): void {
  program
    .command("capture")
    .description("capture packets with a tc (tcx) program, like tcpdump; or filter a capture file (-r)")
    .argument("[expression...]", "a pcap-filter expression (as tcpdump takes it)")
    .option("-i, --interface <name>", "interface to capture on (repeatable; required); \"any\" = every interface that is up, which puts a capture program in the data path of each", (value: string, previous: string[] = []) => [...previous, value])
    .option("-D, --list-interfaces", "list the interfaces that can be captured on, as tcpdump -D")
    .option("-w, --write <file>", "write packets to a pcap or pcapng file (by extension; - = pcap on stdout); an existing file, link, device or FIFO is written through")
    .option("-U, --packet-buffered", "with -w: write each packet to the file as soon as it is read (default: buffered, flushed every second)")
    .option("-C <size>", "with -w: start a new file when the current one is larger than size millions of bytes (or size with k, m or g)")
    .option("-G <seconds>", "with -w: start a new file every this many seconds (strftime patterns in the name are filled in)")
    .option("-W <count>", "with -C: reuse this many file names in turn; with -G: stop after this many files")
    .option("-F <file>", "read the filter expression from a file (the command-line expression is then ignored)")
    .option("-r, --read <file>", "read packets from a capture file instead of an interface")
    .option("-c, --count <count>", "stop after this many packets")
    .option("-s, --snapshot-length <bytes>", "bytes of each packet to keep (0 = 262144)")
    .option("-Q, --direction <in|out|inout>", "capture direction (tc ingress, egress, or both)")
    .option("-B, --buffer-size <KiB>", "ring buffer size in KiB (rounded up to a power of two)")
    .option("-n", "do not resolve names (always the case: accepted for tcpdump compatibility)")
    .option("-e", "print the link-level header")
    .option("-x", "print each packet in hex (from the network header)")
    .option("-X", "print each packet in hex and ASCII")
    .option("-A", "print each packet in ASCII (from the network header)")
    .option("-t", "-t: no timestamp; -tt: seconds since 1970; -ttt: since the previous packet; -tttt: with the date; -ttttt: since the first packet", (_value: string, previous: number) => previous + 1, 0)
    .option("-q", "quick output: less protocol information")
    .option("-S", "print absolute TCP sequence numbers")
    .option("-l", "line-buffered output (always the case: each batch of lines is written as soon as it is read)")
    .option("-v, --verbose", "print IP header fields and checksums (-vv and -vvv print the same)", (_value: string, previous: number) => previous + 1, 0)
    .option("-d, --dump", "print the generated capture program as annotated assembly and exit")
    .option("--json", "one JSON object per packet")
    .addOption(new Option("--no-process", "do not record which process owns each packet's socket"))
    .action(async (expressionWords: string[], options: CaptureCommandOptions) => {
      if (options.read === undefined || options.listInterfaces || options.dump) await loadLiveModules();
      if ((options.verbose ?? 0) > 1) stderr(`netbpf: -${"v".repeat(options.verbose!)} prints what -v prints (tcpdump's extra detail at that level is not decoded)`);
      if (options.listInterfaces) return listInterfaces();
      const expression = options.F !== undefined ? readFilterFile(options.F) : expressionWords.join(" ").trim();
      if (options.dump) return dumpProgram(expression, options);
      if (options.read !== undefined) return readOffline(options.read, expression, options);
      return captureLive(expression, options);
    });
}

function dumpProgram(expression: string, options: CaptureCommandOptions): void {
  const name = options.interface?.find((i) => i !== "any");
  const linkType = name !== undefined ? interfaceLinkType(name) : LinkType.ETHERNET;
  const filter = expression !== "" ? compileCaptureFilter(expression, linkType, { packetMetadata: true }) : undefined;
  const direction = parseDirection(options.direction) === "out" ? "egress" : "ingress";
  const generated = captureProgram({ direction, interfaceSlot: 0, snapLength: parseSnapLength(options.snapshotLength), filter: filter?.emitter, processes: options.process !== false, vlanTags: name !== undefined ? interfaceHasVlanTags(name) : true });
  process.stdout.write(`; netbpf capture program: tc ${direction}, link type ${linkTypeName(linkType)}${expression ? `, filter "${expression}"` : ", no filter"}\n`);
  const listing = formatFilterProgram(generated).replace(/call 0x([0-9a-f]+)$/gm, (text, id: string) => {
    const name = helperNameOf(Number.parseInt(id, 16));
    return name !== undefined ? `call ${name}` : text;
  });
  process.stdout.write(`${listing}\n`);
}

/** The notes on how the offline filters ran (the interpreter used, packets the kernel refused); closes them. */
function closeOfflineFilters(filters: Iterable<OfflineFilter>): void {
  for (const filter of filters) {
    if (filter.engine === "interpreter") stderr(`netbpf: filtered in the user-space interpreter (${filter.unavailable})`);
    if (filter.refusedByKernel > 0) {
      stderr(`netbpf: ${filter.refusedByKernel} packet(s) the kernel refuses for an skb test run (larger than about 3.7 KB, or shorter than an Ethernet header) were filtered by the user-space interpreter`);
    }
    filter.close();
  }
}

async function readOffline(path: string, expression: string, options: CaptureCommandOptions): Promise<void> {
  const count = parseCount(options.count);
  const snapLength = options.snapshotLength !== undefined ? parseSnapLength(options.snapshotLength) : undefined;
  const summary = summaryOptions(options);
  if (options.interface?.length) throw new UsageError(operation, "-r reads a file: -i makes no sense with it");
  if (options.direction !== undefined || options.bufferSize !== undefined) {
    throw new UsageError(operation, "-Q and -B apply to live captures, not to -r", "filter saved packets by direction with the expression (inbound / outbound, on SLL captures)");
  }
  // A classic pcap file takes the fast path; anything else (pcapng, standard input), or a file that
  // cannot be opened (openCapture then says why), the general reader.
  let scanner: PcapScanner | undefined;
  if (path !== "-") {
    try {
      scanner = PcapScanner.open(path);
    } catch {
      scanner = undefined;
    }
  }
  if (scanner !== undefined) {
    try {
      return await scanOffline(scanner, path, expression, options, count, snapLength, summary);
    } finally {
      scanner.close();
    }
  }
  await using reader = await openCapture(path);
  const filters = new Map<number, OfflineFilter>();
  const summarizer = new PacketSummarizer(summary);
  let announced = false;
  let matched = 0;
  const createWriter = (linkType: number, packetSnapLength: number | undefined) => (sink: CaptureSink) =>
    createCaptureWriter(sink, { linkType, snapLength: snapLength ?? packetSnapLength ?? defaultSnapLength, section: { userApplication: "netbpf capture" } });
  const startEmpty = (output: CaptureOutput) => output.start(createWriter(reader.interfaces[0]?.linkType ?? LinkType.ETHERNET, reader.interfaces[0]?.snapLength));
  await withOfflineOutput(options, startEmpty, () => closeOfflineFilters(filters.values()), async (output) => {
    // Compile before reading, as tcpdump does: a bad expression fails before any output.
    const firstLinkType = reader.interfaces[0]?.linkType;
    if (expression !== "" && firstLinkType !== undefined) filters.set(firstLinkType, new OfflineFilter(compileCaptureFilter(expression, firstLinkType)));
    for await (const packet of reader) {
      if (!announced) {
        const captureInterface = reader.interfaceOf(packet);
        stderr(`reading from file ${path === "-" ? "-" : path}, link-type ${describeLinkType(packet.linkType)}, snapshot length ${captureInterface?.snapLength ?? 0}`);
        announced = true;
      }
      if (expression !== "") {
        let filter = filters.get(packet.linkType);
        if (filter === undefined) {
          filter = new OfflineFilter(compileCaptureFilter(expression, packet.linkType));
          filters.set(packet.linkType, filter);
        }
        if (!filter.matches(packet)) continue;
      }
      matched++;
      if (output !== undefined) {
        if (!output.started) output.start(createWriter(packet.linkType, reader.interfaceOf(packet)?.snapLength));
        else if (!(await output.beforePacket())) break;
        const data = snapLength !== undefined && packet.data.length > snapLength ? packet.data.subarray(0, snapLength) : packet.data;
        output.writer!.writePacket({ ...packet, data, interfaceIndex: 0 });
        if (options.packetBuffered) await output.writer!.flush();
      } else {
        const line = options.json
          ? packetJson({ timestamp: packet.timestamp, interfaceName: reader.interfaceOf(packet)?.name, direction: packet.direction, originalLength: packet.originalLength, data: Buffer.from(packet.data), linkType: packet.linkType, process: packet.process, summary: summarizer.describe(packet).split("\n")[0]!, includeData: options.x === true || options.X === true })
          : summarizer.summarize(packet);
        await print(`${line}\n`);
      }
      if (count !== undefined && matched >= count) break;
    }
  });
}

/**
 * The output side of `capture -r`, for the general reader and the pcap fast
 * path alike: opened before reading (a bad path fails before anything is
 * read); interrupted (Ctrl-C, kill, a closed terminal), it keeps every packet
 * written so far, complete — packets are written synchronously, so between two
 * of them the file's buffer holds whole records; when nothing matched, a file
 * with just the header, as tcpdump writes; when the input ends in a broken
 * record (a truncated file), every packet before it, as tcpdump writes; on
 * any other failure, aborted.
 */
async function withOfflineOutput(options: CaptureCommandOptions, startEmpty: (output: CaptureOutput) => void, cleanup: () => void,
  read: (output: CaptureOutput | undefined) => Promise<void>): Promise<void> {
  const output = openOutput(options);
  const finish = () => {
    if (output !== undefined && !output.started) startEmpty(output);
    return output?.close();
  };
  const removeSignals = onStopSignals(() => {
    // File sinks close synchronously; standard output gets what was written.
    finish()?.catch(() => {});
    process.exit(0);
  });
  try {
    await read(output);
    await finish();
  } catch (error) {
    // The input ends in a broken record (a truncated file): keep every packet before it, as tcpdump does.
    if (error instanceof CaptureFormatError && output !== undefined) {
      try {
        await finish();
      } catch {
        output.abort();
      }
    } else {
      output?.abort();
    }
    throw error;
  } finally {
    removeSignals();
    cleanup();
  }
}

/** Packets (or text) between two awaits of the offline fast path. */
const offlineBatch = 4096;
/** Bytes of consecutive matching records copied to the output in one piece (less than the output's buffer: one copy, no larger buffer). */
const passThroughRun = 64 * 1024;

/**
 * `capture -r` over a classic pcap file: read in 4 MiB chunks (PcapScanner),
 * the filter compiled to JavaScript runs over the bytes in place, matching
 * records go straight from the read buffer into the output's buffer — when
 * they need no re-encoding (a pcap output in the file's byte order and
 * resolution), as they are, a whole run of consecutive matching records in
 * one copy — and text goes out a batch at a time. The output behaves as on the general
 * path (CaptureOutput: opened first, written through, rotated, kept whole
 * when interrupted).
 */
async function scanOffline(scanner: PcapScanner, path: string, expression: string, options: CaptureCommandOptions, count: number | undefined, snapLength: number | undefined, summary: SummaryOptions): Promise<void> {
  const { linkType, snapLength: fileSnapLength, nanosecond } = scanner.header;
  const createWriter = (sink: CaptureSink) =>
    createCaptureWriter(sink, { linkType, snapLength: snapLength ?? fileSnapLength ?? defaultSnapLength, section: { userApplication: "netbpf capture" } });
  let filter: OfflineFilter | undefined;
  await withOfflineOutput(options, (output) => output.start(createWriter), () => { if (filter !== undefined) closeOfflineFilters([filter]); }, async (output) => {
    // Compile before reading, as tcpdump does: a bad expression fails before any output.
    if (expression !== "") filter = new OfflineFilter(compileCaptureFilter(expression, linkType));
    const summarizer = output === undefined ? new PacketSummarizer(summary) : undefined;
    const includeData = options.x === true || options.X === true;
    const time = new Uint32Array(2);
    let announced = false;
    let matched = 0;
    let stopped = false;
    let sinceAwait = 0;
    // Lines gathered into chunks, one write each (the buffer reused on stdout).
    const text = new StreamSink(process.stdout, { bufferSize: 64 * 1024 });
    const packet: SummaryPacket = { data: new Uint8Array(0), timestamp: 0n, originalLength: 0, linkType };
    let recordBuffer: Buffer | undefined;
    let recordBytes: Uint8Array = new Uint8Array(0);
    /** A matching record held back (its positions stay valid until the next scan) until the output is ready for it. */
    let held: { start: number; length: number; originalLength: number; seconds: number; fraction: number; buffer: Buffer } | undefined;
    const writeRecord = (buffer: Buffer, start: number, capturedLength: number, originalLength: number, seconds: number, fraction: number): void => {
      pcapRecordTimeWords(seconds, fraction, nanosecond, time);
      const length = snapLength !== undefined && capturedLength > snapLength ? snapLength : capturedLength;
      output!.writer![writePacketBytesUnchecked](0, time[0]!, time[1]!, originalLength, 0, buffer, start, length);
    };
    // With rotation (-C, -G) or -U, each packet needs an await (before it, or after it): one packet per scan call.
    const onePerCall = output !== undefined && (output.rotating || options.packetBuffered === true);
    // Pass-through: matching records the writer would write byte for byte as they are in the file are copied
    // as they are, consecutive ones together (a run: buffer[runStart, runEnd), runCount records).
    let passThrough = false;
    let passLimit = 0;
    let runBuffer: Buffer | undefined;
    let runStart = 0;
    let runEnd = -1;
    let runCount = 0;
    const writeRun = (): void => {
      if (runCount === 0) return;
      (output!.writer as PcapWriter).writeEncodedRecords(runBuffer!, runStart, runEnd, runCount);
      runCount = 0;
      runEnd = -1;
    };
    const startOutput = (): void => {
      const writer = output!.start(createWriter);
      // Rotation and -U take a packet at a time; records with a fraction of a second of a second or more, or longer than
      // the snap length, are re-encoded (as the record path does: the time normalised, the packet cut).
      passThrough = !onePerCall && writer.format === "pcap" && writer.encodesLike(scanner.header.byteOrder, nanosecond);
      passLimit = writer.format === "pcap" ? writer.snapLength : 0;
    };
    const visit = (record: PcapScanRecord): boolean => {
      if (!announced) {
        stderr(`reading from file ${path}, link-type ${describeLinkType(linkType)}, snapshot length ${fileSnapLength}`);
        announced = true;
      }
      if (filter !== undefined && !filter.matchesBytes(record.buffer, record.dataStart, record.capturedLength, record.originalLength)) return ++sinceAwait < offlineBatch;
      matched++;
      if (count !== undefined && matched >= count) stopped = true;
      if (output !== undefined) {
        if (!output.started) startOutput();
        else if (output.rotating) {
          held = { buffer: record.buffer, start: record.dataStart, length: record.capturedLength, originalLength: record.originalLength, seconds: record.seconds, fraction: record.fraction };
          return false;
        }
        if (passThrough && record.fraction < 1_000_000 && record.capturedLength <= passLimit) {
          if (record.recordStart !== runEnd || record.buffer !== runBuffer) {
            writeRun();
            runBuffer = record.buffer;
            runStart = record.recordStart;
          }
          runEnd = record.dataStart + record.capturedLength;
          runCount++;
          if (runEnd - runStart >= passThroughRun) writeRun();
        } else {
          writeRun();
          writeRecord(record.buffer, record.dataStart, record.capturedLength, record.originalLength, record.seconds, record.fraction);
        }
      } else {
        // One packet object for every record, its bytes a plain Uint8Array view (a Buffer's subarray makes a Buffer).
        if (record.buffer !== recordBuffer) {
          recordBuffer = record.buffer;
          recordBytes = new Uint8Array(recordBuffer.buffer, recordBuffer.byteOffset, recordBuffer.byteLength);
        }
        packet.data = recordBytes.subarray(record.dataStart, record.dataStart + record.capturedLength);
        packet.originalLength = record.originalLength;
        let seconds = record.seconds;
        let nanoseconds = nanosecond ? record.fraction : record.fraction * 1000;
        if (nanoseconds >= 1_000_000_000) {
          seconds += Math.floor(nanoseconds / 1_000_000_000);
          nanoseconds %= 1_000_000_000;
        }
        if (options.json) {
          const timestamp = BigInt(seconds) * 1_000_000_000n + BigInt(nanoseconds);
          text.writeLine(packetJson({ timestamp, originalLength: record.originalLength, data: Buffer.from(packet.data), linkType, summary: summarizer!.describe(packet).split("\n")[0]!, includeData }));
        } else {
          text.writeText(summarizer!.timestampPrefixOf(seconds, nanoseconds));
          text.writeLine(summarizer!.describe(packet));
        }
      }
      if (stopped || onePerCall) return false;
      return ++sinceAwait < offlineBatch;
    };
    for (;;) {
      let ended: boolean;
      try {
        ended = scanner.scan(visit, writeRun);
      } catch (error) {
        // A broken record: the lines before it are printed, as tcpdump prints them (the records before it are written: writeRun ran).
        if (text.pending > 0) await text.flush();
        throw error;
      }
      writeRun();
      sinceAwait = 0;
      if (held !== undefined) {
        // Rotation: the next file is started (or the -W limit reached) before this packet is written.
        if (!(await output!.beforePacket())) break;
        writeRecord(held.buffer, held.start, held.length, held.originalLength, held.seconds, held.fraction);
        held = undefined;
      }
      if (text.pending > 0) await text.flush();
      if (output?.started && (options.packetBuffered || ended || stopped)) await output.writer!.flush();
      if (ended || stopped) break;
      // Reads are synchronous: let the event loop run (signals) between batches.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  });
}

/** Reads an interface's rx_dropped counter (what libpcap reports as ifdrop, counted from the start of the capture). */
function receiveDropped(): Map<string, bigint> {
  const counters = new Map<string, bigint>();
  try {
    for (const networkInterface of listNetworkInterfaces()) if (networkInterface.receiveDropped !== undefined) counters.set(networkInterface.name, networkInterface.receiveDropped);
  } catch {
    // statistics are optional
  }
  return counters;
}

/** Whether an error came from writing the output (then the output is not written to again). */
function isWriteFailure(error: unknown): boolean {
  return error instanceof NetbpfError && error.operation === "write capture";
}

async function captureLive(expression: string, options: CaptureCommandOptions): Promise<void> {
  const count = parseCount(options.count);
  const snapLength = parseSnapLength(options.snapshotLength);
  const direction = parseDirection(options.direction);
  const ringSize = parseBufferSize(options.bufferSize);
  const summary = summaryOptions(options);
  if (!options.interface?.length) throw noInterfaceError();
  const interfaces = options.interface;
  const writeTarget = options.write;
  // Only pcapng and JSON have a place for the process.
  const processes = options.process !== false && ((writeTarget !== undefined && writeTarget !== "-" && captureFormatFromPath(writeTarget) === "pcapng") || (writeTarget === undefined && options.json === true));

  // The output first: a bad path fails before any program is attached.
  const output = openOutput(options);
  // Writing a file, nobody watches each packet: wake up for batches (like tcpdump -w); -U wants each packet at once.
  const delivery = writeTarget !== undefined && writeTarget !== "-" && !options.packetBuffered ? "batched" : "immediate";
  // Records below the wakeup threshold only need reading before -c's count is reached (Ctrl-C drains the ring): poll once a second otherwise, as tcpdump -w does.
  const batchInterval = count === undefined ? 1000 : 100;
  let capture: LiveCapture;
  try {
    capture = LiveCapture.open({ interfaces, direction, snapLength, filter: expression, processes, ringSize, delivery, batchInterval });
  } catch (error) {
    output?.abort();
    throw error;
  }
  using _capture = capture;
  if (processes && !capture.processes) stderr(`netbpf: process information unavailable: ${capture.processesUnavailable}`);
  const droppedAtStart = receiveDropped();

  let writer: PcapWriter | PcapngWriter | undefined;
  const interfaceIndexes = new Map<number, number>();
  if (output !== undefined) {
    const [first, ...rest] = capture.interfaces;
    const format = writeTarget === "-" ? "pcap" : captureFormatFromPath(writeTarget!) ?? "pcap";
    if (format === "pcap" && rest.some((i) => i.linkType !== first!.linkType)) {
      output.abort();
      throw new UsageError(operation, "these interfaces have different link types, which one pcap file cannot hold", "write pcapng (-w FILE.pcapng), or capture on fewer interfaces");
    }
    writer = output.start((sink) => {
      const created = createCaptureWriter(sink, {
        format,
        linkType: first!.linkType,
        snapLength,
        section: { userApplication: "netbpf capture" },
        interface: { name: first!.name, filter: expression || undefined },
      });
      interfaceIndexes.set(first!.slot, 0);
      for (const other of rest) {
        interfaceIndexes.set(other.slot, format === "pcapng" ? (created as PcapngWriter).addInterface({ linkType: other.linkType, snapLength, name: other.name, filter: expression || undefined }) : 0);
      }
      return created;
    });
  }

  const names = capture.interfaces.map((i) => i.name).join(", ");
  if (interfaces.includes("any")) stderr(`netbpf: -i any: capturing on ${names} (a capture program in the data path of each)`);
  stderr(`netbpf: listening on ${names} (${describeHooks(capture.interfaces, direction)}), link-type ${describeLinkType(capture.interfaces[0]!.linkType)}, snapshot length ${snapLength} bytes`);

  const abort = new AbortController();
  let failure: unknown;
  const removeSignals = onStopSignals(() => abort.abort());
  // An interface that goes away (deleted, or moved to another namespace) ends the capture, as in tcpdump.
  const watch = setInterval(() => {
    const missing = capture.missingInterface();
    if (missing === undefined) return;
    failure ??= new NetbpfError(operation, `interface ${missing.name} disappeared`, output !== undefined ? "the capture ended; the packets captured before are kept" : "the capture ended");
    abort.abort();
  }, 500);
  const summarizer = new PacketSummarizer(summary);
  const prefixInterface = capture.interfaces.length > 1;
  const perInterfaceDelivered: number[] = [];
  const writerInterfaces = () => capture.interfaces.map((i) => interfaceIndexes.get(i.slot) ?? 0);
  let captured = 0;
  let lastFlush = Date.now();
  try {
    const lines: string[] = [];
    const visit = (packet: LivePacket) => {
      if (count !== undefined && captured >= count) return;
      captured++;
      perInterfaceDelivered[packet.interface.slot] = (perInterfaceDelivered[packet.interface.slot] ?? 0) + 1;
      lines.push(formatLivePacket(packet, summarizer, options, prefixInterface));
    };
    const slots = writerInterfaces();
    for (;;) {
      let read: number;
      if (output !== undefined) {
        if (output.rotating && !(await output.beforePacket())) break;
        // Straight from the ring into the file's buffer: nothing allocated per packet (one at a time when files rotate).
        const maximum = output.rotating ? 1 : 4096;
        read = capture.writeAvailable(output.writer!, slots, perInterfaceDelivered, count !== undefined ? Math.min(maximum, count - captured) : maximum);
        captured += read;
        const now = Date.now();
        // -U and standard output: at once; a file: at least every second, so a crash loses little.
        if ((read > 0 && (writeTarget === "-" || options.packetBuffered)) || now - lastFlush >= 1000) {
          await output.writer!.flush();
          lastFlush = now;
        }
      } else {
        read = capture.readAvailable(visit, 1024);
        // A slow reader of our output holds us here: the ring fills and the kernel counts what it cannot hold as dropped.
        if (lines.length > 0) await print(lines.splice(0).join(""));
      }
      if (count !== undefined && captured >= count) break;
      if (read > 0) continue;
      if (abort.signal.aborted) break;
      await capture.wait(abort.signal);
    }
  } catch (error) {
    failure ??= error;
  } finally {
    clearInterval(watch);
    removeSignals();
  }

  const totals = capture.counters();
  if (output !== undefined && writer !== undefined) {
    if (failure !== undefined && isWriteFailure(failure)) {
      output.abort();
    } else {
      try {
        const current = output.writer!;
        if ("writeInterfaceStatistics" in current && failure === undefined) {
          const now = BigInt(Date.now()) * 1_000_000n;
          const droppedAtEnd = receiveDropped();
          for (const captureInterface of capture.interfaces) {
            const counters = capture.counters(captureInterface.slot);
            const before = droppedAtStart.get(captureInterface.name);
            const after = droppedAtEnd.get(captureInterface.name);
            current.writeInterfaceStatistics({
              interfaceIndex: interfaceIndexes.get(captureInterface.slot) ?? 0,
              timestamp: now,
              interfaceReceived: counters.seen,
              // Dropped by the interface (its rx_dropped counter, as libpcap's ifdrop) and by the OS (the ring was full).
              interfaceDropped: before !== undefined && after !== undefined && after >= before ? after - before : undefined,
              filterAccepted: counters.matched,
              osDropped: counters.dropped,
              userDelivered: BigInt(perInterfaceDelivered[captureInterface.slot] ?? 0),
            });
          }
        }
        await output.close();
      } catch (error) {
        failure ??= error;
        output.abort();
      }
    }
  }
  stderr(`${captured} packet${captured === 1 ? "" : "s"} captured`);
  stderr(`${totals.matched} packet${totals.matched === 1n ? "" : "s"} received by filter`);
  stderr(`${totals.dropped} packet${totals.dropped === 1n ? "" : "s"} dropped by kernel (ring full${output === undefined ? ", or not printed: the output was not read fast enough" : ""})`);
  if (failure !== undefined) throw failure;
}

function formatLivePacket(packet: LivePacket, summarizer: PacketSummarizer, options: CaptureCommandOptions, prefixInterface: boolean): string {
  const summaryPacket = { data: packet.data, timestamp: packet.timestamp, originalLength: packet.originalLength, linkType: packet.interface.linkType };
  if (options.json) {
    return `${packetJson({
      timestamp: packet.timestamp,
      interfaceName: packet.interface.name,
      direction: packet.direction,
      originalLength: packet.originalLength,
      data: packet.data,
      linkType: packet.interface.linkType,
      process: packet.process,
      summary: summarizer.describe(summaryPacket).split("\n")[0]!,
      includeData: options.x === true || options.X === true,
    })}\n`;
  }
  const prefix = prefixInterface ? `${packet.interface.name.padEnd(5)} ${(packet.direction === "inbound" ? "In" : "Out").padEnd(3)} ` : "";
  return `${summarizer.timestampPrefix(packet.timestamp)}${prefix}${summarizer.describe(summaryPacket)}\n`;
}


