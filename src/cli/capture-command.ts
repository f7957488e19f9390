import { Command, Option } from "commander";
import { helperNameOf } from "../asm/helpers.js";
import { compileCaptureFilter } from "../capture/capture-filter.js";
import { defaultRingSize, defaultSnapLength, interfaceLinkType, LiveCapture, type CaptureDirection, type LivePacket } from "../capture/live-capture.js";
import { OfflineFilter } from "../capture/offline-filter.js";
import { PacketSummarizer, type SummaryOptions } from "../capture/packet-summary.js";
import { formatFilterProgram } from "../filter/format-filter-program.js";
import { createCaptureWriter, openCapture, captureFormatFromPath } from "../pcap/capture-file.js";
import type { CapturePacket } from "../pcap/capture-record.js";
import { LinkType, linkTypeName } from "../pcap/link-type.js";
import { emptyPacket } from "../pcap/pcap-reader.js";
import { PcapScanner, pcapTimeWords, type PcapScanRecord } from "../pcap/pcap-scanner.js";
import type { PcapngWriter } from "../pcap/pcapng-writer.js";
import type { PcapWriter } from "../pcap/pcap-writer.js";
import { captureProgram, maximumSnapLength } from "../programs/capture-program.js";
import { UsageError } from "../sys/errors.js";
import { toJson } from "./output.js";

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
  verbose?: boolean;
  json?: boolean;
  dump?: boolean;
  bufferSize?: string;
  process?: boolean;
}

const operation = "capture";

/** tcpdump's names for link types in its "link-type" messages. */
const linkTypeDescriptions: Record<number, string> = {
  [LinkType.ETHERNET]: "EN10MB (Ethernet)",
  [LinkType.RAW]: "RAW (Raw IP)",
  [LinkType.LINUX_SLL]: "LINUX_SLL (Linux cooked v1)",
  [LinkType.LINUX_SLL2]: "LINUX_SLL2 (Linux cooked v2)",
};

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

function summaryOptions(options: CaptureCommandOptions): SummaryOptions {
  return {
    linkLevel: options.e === true,
    verbose: options.verbose === true,
    hexDump: options.X ? "hex-ascii" : options.x ? "hex" : undefined,
  };
}

function stderr(text: string): void {
  process.stderr.write(`${text}\n`);
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
    .option("-i, --interface <name>", "interface to capture on (repeatable); \"any\" = every interface that is up", (value: string, previous: string[] = []) => [...previous, value])
    .option("-w, --write <file>", "write packets to a pcap or pcapng file (by extension; - = pcap on stdout)")
    .option("-r, --read <file>", "read packets from a capture file instead of an interface")
    .option("-c, --count <count>", "stop after this many packets")
    .option("-s, --snapshot-length <bytes>", "bytes of each packet to keep (0 = 262144)")
    .option("-Q, --direction <in|out|inout>", "capture direction (tc ingress, egress, or both)")
    .option("-B, --buffer-size <KiB>", "ring buffer size in KiB (rounded up to a power of two)")
    .option("-n", "do not resolve names (always the case: accepted for tcpdump compatibility)")
    .option("-e", "print the link-level header")
    .option("-x", "print each packet in hex (from the network header)")
    .option("-X", "print each packet in hex and ASCII")
    .option("-v, --verbose", "print IP header fields and checksums")
    .option("-d, --dump", "print the generated capture program as annotated assembly and exit")
    .option("--json", "one JSON object per packet")
    .addOption(new Option("--no-process", "do not record which process owns each packet's socket"))
    .action(async (expressionWords: string[], options: CaptureCommandOptions) => {
      const expression = expressionWords.join(" ").trim();
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
  const generated = captureProgram({ direction, interfaceSlot: 0, snapLength: parseSnapLength(options.snapshotLength), filter: filter?.emitter, processes: options.process !== false });
  process.stdout.write(`; netbpf capture program: tc ${direction}, link type ${linkTypeName(linkType)}${expression ? `, filter "${expression}"` : ", no filter"}\n`);
  const listing = formatFilterProgram(generated).replace(/call 0x([0-9a-f]+)$/gm, (text, id: string) => {
    const name = helperNameOf(Number.parseInt(id, 16));
    return name !== undefined ? `call ${name}` : text;
  });
  process.stdout.write(`${listing}\n`);
}

async function readOffline(path: string, expression: string, options: CaptureCommandOptions): Promise<void> {
  const count = parseCount(options.count);
  const snapLength = options.snapshotLength !== undefined ? parseSnapLength(options.snapshotLength) : undefined;
  if (options.interface?.length) throw new UsageError(operation, "-r reads a file: -i makes no sense with it");
  if (options.direction !== undefined || options.bufferSize !== undefined) {
    throw new UsageError(operation, "-Q and -B apply to live captures, not to -r", "filter saved packets by direction with the expression (inbound / outbound, on SLL captures)");
  }
  const filters = new Map<number, OfflineFilter>();
  const filterFor = (linkType: number): OfflineFilter => {
    let filter = filters.get(linkType);
    if (filter === undefined) {
      filter = new OfflineFilter(compileCaptureFilter(expression, linkType));
      filters.set(linkType, filter);
    }
    return filter;
  };
  const summarizer = new PacketSummarizer(summaryOptions(options));
  let writer: PcapWriter | PcapngWriter | undefined;
  let announced = false;
  let matched = 0;
  const announce = (linkType: number, fileSnapLength: number | undefined) => {
    stderr(`reading from file ${path === "-" ? "-" : path}, link-type ${describeLinkType(linkType)}, snapshot length ${fileSnapLength ?? 0}`);
    announced = true;
  };
  const openWriter = (linkType: number, fileSnapLength: number | undefined): PcapWriter | PcapngWriter =>
    (writer ??= createCaptureWriter(options.write!, { linkType, snapLength: snapLength ?? fileSnapLength ?? defaultSnapLength, section: { userApplication: "netbpf capture" } }));
  // Text for a whole batch of packets goes out in one write.
  let text = "";
  const addText = (packet: CapturePacket, interfaceName: string | undefined) => {
    const summary = summarizer.summarize(packet);
    if (options.json) {
      text += `${packetJson({ timestamp: packet.timestamp, interfaceName, direction: packet.direction, originalLength: packet.originalLength, data: Buffer.from(packet.data), linkType: packet.linkType, process: packet.process, summary: summarizer.describe(packet).split("\n")[0]!, includeData: options.x === true || options.X === true })}\n`;
    } else {
      text += `${summary}\n`;
    }
  };
  const flushOutput = async () => {
    if (text !== "") {
      process.stdout.write(text);
      text = "";
    }
    if (writer !== undefined) await writer.flush();
  };
  try {
    using scanner = path !== "-" ? PcapScanner.open(path) : undefined;
    if (scanner !== undefined) {
      // Classic pcap from a file: large reads, the filter over the bytes in place, records copied straight to the output.
      const { linkType, snapLength: fileSnapLength, nanosecond, fcsLength } = scanner.header;
      const filter = expression !== "" ? filterFor(linkType) : undefined;
      const time = new Uint32Array(2);
      let stopped = false;
      let sinceFlush = 0;
      const visit = (record: PcapScanRecord): boolean => {
        if (!announced) announce(linkType, fileSnapLength);
        if (filter !== undefined && !filter.matchesBytes(record.buffer, record.dataStart, record.capturedLength, record.originalLength)) return true;
        matched++;
        if (options.write !== undefined) {
          const output = openWriter(linkType, fileSnapLength);
          pcapTimeWords(record.seconds, record.fraction, nanosecond, time);
          const length = snapLength !== undefined && record.capturedLength > snapLength ? snapLength : record.capturedLength;
          output.writePacketBytes(0, time[0]!, time[1]!, record.originalLength, 0, record.buffer, record.dataStart, length);
        } else {
          const timestamp = BigInt(record.seconds) * 1_000_000_000n + BigInt(record.fraction) * (nanosecond ? 1n : 1000n);
          const data = record.buffer.subarray(record.dataStart, record.dataStart + record.capturedLength);
          addText(emptyPacket(timestamp, data, record.originalLength, linkType, fcsLength, "pcap-record"), undefined);
        }
        if (count !== undefined && matched >= count) {
          stopped = true;
          return false;
        }
        return ++sinceFlush < 4096;
      };
      while (!stopped && !scanner.scan(visit)) {
        sinceFlush = 0;
        await flushOutput();
      }
    } else {
      await using reader = await openCapture(path);
      // Compile before reading, as tcpdump does: a bad expression fails before any output.
      const firstLinkType = reader.interfaces[0]?.linkType;
      if (expression !== "" && firstLinkType !== undefined) filterFor(firstLinkType);
      batches: for await (const batch of reader.packetBatches()) {
        for (const packet of batch) {
          if (!announced) announce(packet.linkType, reader.interfaceOf(packet)?.snapLength);
          if (expression !== "" && !filterFor(packet.linkType).matches(packet)) continue;
          matched++;
          if (options.write !== undefined) {
            const data = snapLength !== undefined && packet.data.length > snapLength ? packet.data.subarray(0, snapLength) : packet.data;
            openWriter(packet.linkType, reader.interfaceOf(packet)?.snapLength).writePacket({ ...packet, data, interfaceIndex: 0 });
          } else {
            addText(packet, reader.interfaceOf(packet)?.name);
          }
          if (count !== undefined && matched >= count) break batches;
        }
        await flushOutput();
      }
    }
    await flushOutput();
    if (writer !== undefined) await (writer as PcapWriter | PcapngWriter).close();
  } catch (error) {
    (writer as PcapWriter | PcapngWriter | undefined)?.abort();
    throw error;
  } finally {
    for (const filter of filters.values()) {
      if (filter.engine === "interpreter") stderr(`netbpf: filtered in the user-space interpreter (${filter.unavailable})`);
      if (filter.refusedByKernel > 0) {
        stderr(`netbpf: ${filter.refusedByKernel} packet(s) the kernel refuses for an skb test run (larger than about 3.7 KB, or shorter than an Ethernet header) were filtered by the user-space interpreter`);
      }
      filter.close();
    }
  }
}

async function captureLive(expression: string, options: CaptureCommandOptions): Promise<void> {
  const count = parseCount(options.count);
  const snapLength = parseSnapLength(options.snapshotLength);
  const direction = parseDirection(options.direction);
  const ringSize = parseBufferSize(options.bufferSize);
  const interfaces = options.interface?.length ? options.interface : ["any"];
  const writeTarget = options.write;
  // Only pcapng and JSON have a place for the process.
  const processes = options.process !== false && ((writeTarget !== undefined && writeTarget !== "-" && captureFormatFromPath(writeTarget) === "pcapng") || (writeTarget === undefined && options.json === true));

  // Writing a file, nobody watches each packet: wake up for batches (like tcpdump -w).
  const delivery = writeTarget !== undefined && writeTarget !== "-" ? "batched" : "immediate";
  // Records below the wakeup threshold only need reading before -c's count is reached (Ctrl-C drains the ring): poll once a second otherwise, as tcpdump -w does.
  const batchInterval = count === undefined ? 1000 : 100;
  using capture = LiveCapture.open({ interfaces, direction, snapLength, filter: expression, processes, ringSize, delivery, batchInterval });
  if (processes && !capture.processes) stderr(`netbpf: process information unavailable: ${capture.processesUnavailable}`);

  let writer: PcapWriter | PcapngWriter | undefined;
  const interfaceIndexes = new Map<number, number>();
  if (writeTarget !== undefined) {
    const [first, ...rest] = capture.interfaces;
    const format = writeTarget === "-" ? "pcap" : captureFormatFromPath(writeTarget) ?? "pcap";
    if (format === "pcap" && rest.some((i) => i.linkType !== first!.linkType)) {
      throw new UsageError(operation, "these interfaces have different link types, which one pcap file cannot hold", "write pcapng (-w FILE.pcapng), or capture on fewer interfaces");
    }
    writer = createCaptureWriter(writeTarget, {
      linkType: first!.linkType,
      snapLength,
      section: { userApplication: "netbpf capture" },
      interface: { name: first!.name, filter: expression || undefined },
    });
    interfaceIndexes.set(first!.slot, 0);
    for (const other of rest) {
      interfaceIndexes.set(other.slot, format === "pcapng" ? (writer as PcapngWriter).addInterface({ linkType: other.linkType, snapLength, name: other.name, filter: expression || undefined }) : 0);
    }
  }

  const names = capture.interfaces.map((i) => i.name).join(", ");
  const hooks = direction === "in" ? "ingress" : direction === "out" ? "egress" : "ingress+egress";
  stderr(`netbpf: listening on ${names} (tcx ${hooks}), link-type ${describeLinkType(capture.interfaces[0]!.linkType)}, snapshot length ${snapLength} bytes`);

  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  const summarizer = new PacketSummarizer(summaryOptions(options));
  const prefixInterface = capture.interfaces.length > 1;
  const perInterfaceDelivered: number[] = [];
  const writerInterfaces = capture.interfaces.map((i) => interfaceIndexes.get(i.slot) ?? 0);
  let captured = 0;
  let failure: unknown;
  try {
    const visit = (packet: LivePacket) => {
      if (count !== undefined && captured >= count) return;
      captured++;
      perInterfaceDelivered[packet.interface.slot] = (perInterfaceDelivered[packet.interface.slot] ?? 0) + 1;
      lines.push(formatLivePacket(packet, summarizer, options, prefixInterface));
    };
    const lines: string[] = [];
    for (;;) {
      let read: number;
      if (writer !== undefined) {
        // Straight from the ring into the file's buffer: nothing allocated per packet.
        read = capture.writeAvailable(writer, writerInterfaces, perInterfaceDelivered, count !== undefined ? Math.min(4096, count - captured) : 4096);
        captured += read;
        if (read > 0 && writeTarget === "-") await writer.flush();
      } else {
        read = capture.readAvailable(visit);
        if (lines.length > 0) process.stdout.write(lines.splice(0).join(""));
      }
      if (count !== undefined && captured >= count) break;
      if (read > 0) continue;
      if (abort.signal.aborted) break;
      await capture.wait(abort.signal);
    }
  } catch (error) {
    failure = error;
  } finally {
    process.removeListener("SIGINT", stop);
    process.removeListener("SIGTERM", stop);
  }

  const totals = capture.counters();
  if (writer !== undefined) {
    if (failure !== undefined) {
      writer.abort();
    } else {
      if ("writeInterfaceStatistics" in writer) {
        const now = BigInt(Date.now()) * 1_000_000n;
        for (const captureInterface of capture.interfaces) {
          const counters = capture.counters(captureInterface.slot);
          writer.writeInterfaceStatistics({
            interfaceIndex: interfaceIndexes.get(captureInterface.slot) ?? 0,
            timestamp: now,
            interfaceReceived: counters.seen,
            interfaceDropped: counters.dropped,
            filterAccepted: counters.matched,
            osDropped: counters.dropped,
            userDelivered: BigInt(perInterfaceDelivered[captureInterface.slot] ?? 0),
          });
        }
      }
      await writer.close();
    }
  }
  if (failure !== undefined) throw failure;
  stderr(`${captured} packet${captured === 1 ? "" : "s"} captured`);
  stderr(`${totals.matched} packet${totals.matched === 1n ? "" : "s"} received by filter`);
  stderr(`${totals.dropped} packet${totals.dropped === 1n ? "" : "s"} dropped by kernel (ring full)`);
  if (abort.signal.aborted) process.exitCode = 0;
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
  return `${summarizer.formatTimestamp(packet.timestamp)} ${prefix}${summarizer.describe(summaryPacket)}\n`;
}


