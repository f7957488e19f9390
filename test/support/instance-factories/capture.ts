import { Writable } from "node:stream";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import {
  AtomicFileSink, BufferSink, CaptureOutput, DirectFileSink, LinkType, LiveCapture, PacketSummarizer, PcapScanner, PcapWriter,
  PcapngWriter, StreamSink, openCapture,
} from "../../../src/index.js";
import type { AcceptedCalls, InstanceFactory } from "./types.js";

/** Files go into the probe's working folder (a temporary folder), one name per instance. */
let fileNumber = 0;
function nextPath(extension: string): string {
  return resolve(`capture-${process.pid}-${fileNumber++}.${extension}`);
}

/** A small pcap file (two Ethernet packets), written once into the working folder. */
let capturePath: string | undefined;
function smallCapture(): string {
  if (capturePath !== undefined) return capturePath;
  const sink = new BufferSink();
  const writer = new PcapWriter(sink, { linkType: LinkType.ETHERNET });
  for (let i = 0; i < 2; i++) writer.writePacket({ data: Buffer.alloc(60, i), timestamp: 1_700_000_000_000_000_000n + BigInt(i) });
  capturePath = nextPath("pcap");
  writeFileSync(capturePath, sink.toBuffer());
  return capturePath;
}

function discardingStream(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

function pcapngWriter(): PcapngWriter {
  const writer = new PcapngWriter(new BufferSink());
  writer.addInterface({ linkType: LinkType.ETHERNET });
  return writer;
}

export const factories: Record<string, InstanceFactory> = {
  AtomicFileSink: () => new AtomicFileSink(nextPath("pcap")),
  BufferSink: () => new BufferSink(),
  CaptureOutput: () => new CaptureOutput({ target: nextPath("pcap") }),
  CaptureReader: () => openCapture(smallCapture()),
  DirectFileSink: () => new DirectFileSink(nextPath("pcap")),
  // The probe's own namespace's loopback; no process table (that would attach to the host's root cgroup).
  LiveCapture: () => LiveCapture.open({ interfaces: ["lo"], processes: false, ringSize: 64 * 1024 }),
  PacketSummarizer: () => new PacketSummarizer(),
  PcapScanner: () => PcapScanner.open(smallCapture())!,
  PcapWriter: () => new PcapWriter(new BufferSink(), { linkType: LinkType.ETHERNET }),
  PcapngWriter: pcapngWriter,
  StreamSink: () => new StreamSink(discardingStream()),
};

export const accepted: AcceptedCalls = {
  "AtomicFileSink#flushSync": { calls: ["()", "(undefined)"], reason: "after is optional: flushSync() writes the buffered bytes and nothing after them" },
  "DirectFileSink#flushSync": { calls: ["()", "(undefined)"], reason: "after is optional: flushSync() writes the buffered bytes and nothing after them" },
  "AtomicFileSink#reserve": { calls: ["(42)"], reason: "makes room for a 42-byte record and returns its offset in the buffer" },
  "DirectFileSink#reserve": { calls: ["(42)"], reason: "makes room for a 42-byte record and returns its offset in the buffer" },
  "StreamSink#reserve": { calls: ["(42)"], reason: "makes room for a 42-byte record and returns its offset in the buffer" },
  "StreamSink#writeText": { calls: ['("x")'], reason: "text is any string: \"x\" is output as it is" },
  "StreamSink#writeLine": { calls: ['("x")'], reason: "text is any string: \"x\" is output as a line" },
  "CaptureOutput#beforePacket": { calls: ["(42)"], reason: "now is a time in milliseconds since 1970 (Date.now()); 42 is one, and no rotation is configured" },
  "LiveCapture#counters": { calls: ["()", "(undefined)"], reason: "slot is optional: without it the counters of every interface are summed" },
  "LiveCapture#wait": { calls: ["()", "(undefined)"], reason: "signal is optional: without it wait() waits for packets, and none come on the probe's idle lo" },
  "LiveCapture#batches": { calls: ["()", "(undefined)"], reason: "signal is optional: without it the generator waits for packets, and none come on the probe's idle lo" },
  "LiveCapture#packets": { calls: ["()", "(undefined)"], reason: "signal is optional: without it the generator waits for packets, and none come on the probe's idle lo" },
  "PcapngWriter#writeInterfaceStatistics": { calls: ["({})"], reason: "every field is optional: {} writes an Interface Statistics Block for interface 0, taken now" },
};
