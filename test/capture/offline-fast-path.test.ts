/**
 * `capture -r FILE` over a classic pcap file takes a fast path (PcapScanner:
 * large reads, the filter over the bytes in place, records copied straight
 * to the output); standard input and pcapng take the general reader. Both
 * must give the same output for the same options, byte for byte.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cliPath } from "../support/cli.js";

const fixture = fileURLToPath(new URL("../../../test/capture/fixtures/tcpdump-loopback-mixed.pcap", import.meta.url));

function netbpf(args: string[], input?: Buffer) {
  const result = spawnSync(process.execPath, [cliPath, ...args], { input, encoding: "buffer", env: { ...process.env, TZ: "UTC" }, timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr.toString() };
}

test("capture -r: the classic pcap fast path gives what the general reader gives (text, JSON, pcap, -c, -s, -C)", (t) => {
  const directory = mkdtempSync(join(tmpdir(), "nbpf-offline-fast-"));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  const bytes = readFileSync(fixture);
  const cases: string[][] = [
    [],
    ["tcp"],
    ["-c", "3", "udp or tcp"],
    ["--json", "-x", "tcp"],
    ["-w", "-"],
    ["-w", "-", "-s", "60", "tcp"],
    ["-w", "-", "-c", "2"],
    ["-w", "-", "-U", "udp"],
    ["-w", "-", "port 1"],
  ];
  for (const options of cases) {
    const fast = netbpf(["capture", "-r", fixture, ...options]);
    const general = netbpf(["capture", "-r", "-", ...options], bytes);
    assert.equal(fast.status, 0, fast.stderr);
    assert.equal(general.status, 0, general.stderr);
    assert.ok(fast.stdout.length > 0, `output with ${options.join(" ")}`);
    assert.ok(fast.stdout.equals(general.stdout), `same output with ${options.join(" ")}`);
    assert.equal(fast.stderr.replace(fixture, "-"), general.stderr, `same messages with ${options.join(" ")}`);
  }
  // Rotation by size: the same files with the same contents.
  const large = join(directory, "large.pcap");
  const records = bytes.subarray(24);
  writeFileSync(large, Buffer.concat([bytes.subarray(0, 24), ...Array.from({ length: 1600 }, () => records)]));
  for (const [name, input] of [["fast", undefined], ["general", readFileSync(large)]] as const) {
    const folder = join(directory, name);
    spawnSync("mkdir", [folder]);
    const result = netbpf(["capture", "-r", input === undefined ? large : "-", "-w", join(folder, "out"), "-C", "1", "-W", "3", "tcp"], input);
    assert.equal(result.status, 0, result.stderr);
  }
  const files = readdirSync(join(directory, "fast")).sort();
  assert.ok(files.length >= 2, `rotated: ${files}`);
  assert.deepEqual(readdirSync(join(directory, "general")).sort(), files);
  for (const file of files) assert.ok(readFileSync(join(directory, "fast", file)).equals(readFileSync(join(directory, "general", file))), file);
});
