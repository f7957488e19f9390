/**
 * Timestamps in what a live capture writes never go backwards, even when
 * packets come from both CPUs at once (each CPU takes a packet's time before
 * it reserves the packet's place in the shared ring).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { readCaptureFile } from "../../src/pcap/capture-file.js";
import { cliPath } from "../support/cli.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { finished, listening } from "../support/capture-process.js";
import { randomServicePort } from "../support/service-port.js";

/** A Node script that sends `count` small UDP datagrams to 127.0.0.1:port as fast as it can. */
function floodScript(port: number, count: number): string {
  return `
import dgram from "node:dgram";
const socket = dgram.createSocket("udp4");
const payload = Buffer.alloc(32);
let sent = 0;
await new Promise((resolve) => {
  const burst = () => {
    for (let i = 0; i < 50 && sent < ${count}; i++, sent++) socket.send(payload, ${port}, "127.0.0.1");
    if (sent < ${count}) setImmediate(burst); else setTimeout(resolve, 50);
  };
  burst();
});
socket.close();
`;
}

for (const format of ["pcap", "pcapng"] as const) {
  test(`a ${format} file written from packets of two CPUs at once has timestamps that never go backwards`, async (t) => {
    if (skipUnlessKernel(t, isRoot(), "needs root to attach a capture program to lo")) return;
    const folder = mkdtempSync(join(tmpdir(), "nbhd-timestamps-"));
    t.after(() => rmSync(folder, { recursive: true, force: true }));
    const output = join(folder, `out.${format}`);
    const port = randomServicePort();
    const packets = 6000;
    const args = [cliPath, "capture", "-i", "lo", "-Q", "in", "-w", output, "-c", String(packets), `udp dst port ${port}`];
    const capture = spawn(process.execPath, args);
    t.after(() => capture.exitCode === null && capture.signalCode === null && capture.kill("SIGKILL"));
    await listening(capture);
    const done = finished(capture, 60_000);
    // One sender per CPU, started together, so the kernel runs the capture program on both CPUs at once.
    const senders = Array.from({ length: Math.min(2, cpus().length) }, (_, cpu) =>
      finished(spawn("taskset", ["-c", String(cpu), process.execPath, "--input-type=module", "-e", floodScript(port, packets)]), 60_000));
    await Promise.all(senders);
    if (capture.exitCode === null) capture.kill("SIGINT");
    const result = await done;
    assert.ok(result.code === 0, `capture: ${result.stderr}`);
    const contents = readCaptureFile(output);
    assert.ok(contents.packets.length > 1000, `captured ${contents.packets.length} packets`);
    let backwards = 0;
    for (let index = 1; index < contents.packets.length; index++) {
      if (contents.packets[index]!.timestamp < contents.packets[index - 1]!.timestamp) backwards++;
    }
    assert.equal(backwards, 0, `${backwards} of ${contents.packets.length} packets are older than the packet before them`);
  });
}
