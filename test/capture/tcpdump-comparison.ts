/**
 * Differential testing of the summaries: packets written to a pcap, read
 * back by tcpdump -n -t with the flags of each mode and summarized by
 * PacketSummarizer with the matching options; the texts compared line by line.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readCaptureFile } from "../../src/pcap/capture-file.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { PacketSummarizer, type SummaryOptions } from "../../src/capture/packet-summary.js";
import { writePcap, type CapturedPacket } from "../support/pcap-writer.js";

export const tcpdumpAvailable = spawnSync("tcpdump", ["--version"]).status === 0;

/** tcpdump's flags and the summarizer's options for each mode compared. */
export const comparedModes: readonly { flags: string[]; options: SummaryOptions }[] = [
  { flags: [], options: {} },
  { flags: ["-v"], options: { verbose: true } },
  { flags: ["-q"], options: { quiet: true } },
  { flags: ["-q", "-v"], options: { quiet: true, verbose: true } },
  { flags: ["-e"], options: { linkLevel: true } },
  { flags: ["-e", "-v", "-x"], options: { linkLevel: true, verbose: true, hexDump: "hex" } },
];

/**
 * Port sweeps: writes the Ethernet frames `packets` to `path`, has tcpdump -n -t print them and returns
 * its lines (one per packet) and the indexes of the packets where `label` of netbpf's summary differs
 * from `label` of tcpdump's line (which printer each chose).
 */
export function printerChoicesDiffering(packets: CapturedPacket[], path: string, label: (line: string) => string): { theirs: string[]; differing: number[] } {
  writeFileSync(path, writePcap(LinkType.ETHERNET, packets));
  const result = spawnSync("tcpdump", ["-n", "-t", "-r", path], { encoding: "utf8", maxBuffer: 256 << 20 });
  assert.equal(result.status, 0, result.stderr);
  const theirs = result.stdout.split("\n").filter((line) => line.startsWith("IP "));
  assert.equal(theirs.length, packets.length);
  const summarizer = new PacketSummarizer({ timestampFormat: "none" });
  const differing: number[] = [];
  packets.forEach((packet, index) => {
    if (label(summarizer.describe({ data: packet.data, timestamp: 0n, linkType: LinkType.ETHERNET })) !== label(theirs[index]!)) differing.push(index);
  });
  return { theirs, differing };
}

/**
 * Writes `packets` (frames of `linkType`, Ethernet unless said) to a pcap and asserts that the output of every
 * one of `modes` is tcpdump's, line for line; returns tcpdump's output in the first two modes (default and -v
 * unless said) for checks of what the traffic reached.
 */
export function assertSameAsTcpdump(packets: CapturedPacket[], name: string, linkType: number = LinkType.ETHERNET, modes = comparedModes): { text: string; verbose: string } {
  const directory = mkdtempSync(join(tmpdir(), `nb-${name}-summary-`));
  try {
    const path = join(directory, `${name}.pcap`);
    writeFileSync(path, writePcap(linkType, packets));
    const texts: string[] = [];
    for (const { flags, options } of modes) {
      const result = spawnSync("tcpdump", ["-n", "-t", ...flags, "-r", path], { encoding: "utf8", maxBuffer: 256 << 20 });
      assert.equal(result.status, 0, result.stderr);
      const theirs = result.stdout.replace(/\n$/, "").split("\n");
      const summarizer = new PacketSummarizer({ ...options, timestampFormat: "none" });
      const ours = readCaptureFile(path).packets.map((packet) => summarizer.summarize(packet)).join("\n").split("\n");
      for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
        if (ours[i] !== theirs[i]) {
          assert.fail(`tcpdump ${flags.join(" ")}: line ${i} differs\n ours: ${JSON.stringify(ours[i])}\ntheirs: ${JSON.stringify(theirs[i])}\ncontext:\n${theirs.slice(Math.max(0, i - 6), i + 2).join("\n")}`);
        }
      }
      texts.push(result.stdout);
    }
    return { text: texts[0]!, verbose: texts[1]! };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
