import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { probeTcx } from "../../src/features/features.js";
import { cliPath } from "../support/cli.js";
import { isRoot, skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";
import { Testbed } from "../support/testbed.js";
import { finished, listening } from "../support/capture-process.js";
import { tcpdumpAvailable } from "../filter/tcpdump-oracle.js";

/** The TCP segments of a capture file as tcpdump prints them (sequence ranges), optionally through a filter. */
function segments(file: string, expression?: string): string[] {
  const result = spawnSync("tcpdump", ["-nr", file, ...(expression === undefined ? [] : [expression])], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.split("\n").map((line) => /seq (\d+:\d+)/.exec(line)?.[1]).filter((range): range is string => range !== undefined).sort();
}

/**
 * TCP data a socket sends leaves with only the headers in the skb's linear part
 * (the payload is in page fragments), so a filter on payload bytes reads them
 * through the generator's non-linear path at tc egress: bpf_skb_pull_data of the
 * bytes the filter can read when its loads have a static bound (`tcp[40]`), the
 * bpf_skb_load_bytes copy of the filter when they do not (an offset read from the
 * packet). The reference: the same expressions applied by tcpdump (libpcap) to an
 * unfiltered capture of the same traffic.
 */
test("live capture at tc egress: a filter on TCP payload bytes of non-linear skbs selects what tcpdump -r selects from the unfiltered capture", async (t) => {
  if (skipUnlessKernel(t, isRoot() && probeTcx(), "needs root and tcx")) return;
  if (skipUnlessTool(t, await tcpdumpAvailable(), "tcpdump is not installed")) return;
  const bed = Testbed.create("fsnl", { disableIpv6: true });
  const directory = mkdtempSync(join(tmpdir(), "nb-fsnl-"));
  t.after(() => {
    bed.destroy();
    rmSync(directory, { recursive: true, force: true });
  });
  // The 9th payload byte of each segment: "A" in the first half of the stream, "B" in the second.
  const expression = "tcp[((tcp[12] & 0xf0) >> 2) + 8] = 0x41";
  // A byte of the payload at a fixed offset (with a 32-byte TCP header, the 9th again): a static bound.
  const boundedExpression = "tcp[40] = 0x41";
  const filteredFile = join(directory, "filtered.pcap");
  const boundedFile = join(directory, "bounded.pcap");
  const allFile = join(directory, "all.pcap");
  const filtered = bed.start(bed.b, [process.execPath, cliPath, "capture", "-i", bed.b.interface, "-Q", "out", "-w", filteredFile, expression], "nsenter");
  const bounded = bed.start(bed.b, [process.execPath, cliPath, "capture", "-i", bed.b.interface, "-Q", "out", "-w", boundedFile, boundedExpression], "nsenter");
  const all = bed.start(bed.b, [process.execPath, cliPath, "capture", "-i", bed.b.interface, "-Q", "out", "-s", "200", "-w", allFile, "tcp"], "nsenter");
  const filteredResult = finished(filtered, 60_000);
  const boundedResult = finished(bounded, 60_000);
  const allResult = finished(all, 60_000);
  const server = bed.start(bed.a, [process.execPath, "--input-type=module", "-e", `
import { createServer } from "node:net";
const server = createServer((socket) => { socket.resume(); socket.on("end", () => server.close()); });
server.listen(5001, ${JSON.stringify(bed.a.address)}, () => console.log("ready"));
`]);
  const serverResult = finished(server, 60_000);
  try {
    await Promise.all([listening(filtered), listening(bounded), listening(all), new Promise<void>((resolve) => server.stdout.once("data", () => resolve()))]);
    bed.node(bed.b, `
import { connect } from "node:net";
const socket = connect(5001, ${JSON.stringify(bed.a.address)});
await new Promise((resolve) => socket.once("connect", resolve));
for (const letter of ["A", "B"]) for (let i = 0; i < 8; i++) await new Promise((resolve) => socket.write(Buffer.alloc(60000, letter), resolve));
await new Promise((resolve) => socket.end(resolve));
`);
    await serverResult;
    await new Promise((resolve) => setTimeout(resolve, 500));
  } finally {
    filtered.kill("SIGINT");
    bounded.kill("SIGINT");
    all.kill("SIGINT");
    server.kill("SIGKILL");
  }
  const [first, second, third] = await Promise.all([filteredResult, allResult, boundedResult]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(second.code, 0, second.stderr);
  assert.equal(third.code, 0, third.stderr);
  const want = segments(allFile, expression);
  assert.ok(want.length > 0, "some segments carry an A at the 9th payload byte");
  assert.ok(segments(allFile).length > want.length, "others do not");
  assert.deepEqual(segments(filteredFile), want);
  const wantBounded = segments(allFile, boundedExpression);
  assert.ok(wantBounded.length > 0 && segments(allFile).length > wantBounded.length, "tcp[40] = 0x41 selects some segments and not others");
  assert.deepEqual(segments(boundedFile), wantBounded);
});
