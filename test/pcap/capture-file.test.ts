import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import {
  captureFormatFromPath,
  createCaptureWriter,
  detectCaptureFormat,
  openCapture,
  readCapture,
  readCaptureFile,
  readCaptureRecords,
} from "../../src/pcap/capture-file.js";
import { CaptureFormatError } from "../../src/pcap/capture-format-error.js";
import type { CaptureRecord } from "../../src/pcap/capture-record.js";
import { LinkType } from "../../src/pcap/link-type.js";
import { PcapngWriter } from "../../src/pcap/pcapng-writer.js";
import { PcapWriter } from "../../src/pcap/pcap-writer.js";
import { NetbpfError, UsageError } from "../../src/sys/errors.js";
import { sampleFullPcapng, samplePackets, samplePcap, seededRandom } from "./capture-samples.js";

function temporaryDirectory(): string {
  return mkdtempSync(join(tmpdir(), "nb-pcap-"));
}

/** Splits bytes into chunks of random sizes, to cross every boundary. */
function chunked(bytes: Buffer, seed: number): Readable {
  const random = seededRandom(seed);
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const size = 1 + Math.floor(random() * 40);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return Readable.from(chunks);
}

function comparable(record: CaptureRecord): unknown {
  return JSON.parse(JSON.stringify(record, (_key, value) => (typeof value === "bigint" ? `${value}n` : value)));
}

test("format detection by magic and by file name", () => {
  assert.equal(detectCaptureFormat(samplePcap("big", "nanosecond", 1)), "pcap");
  assert.equal(detectCaptureFormat(sampleFullPcapng("little")), "pcapng");
  assert.equal(detectCaptureFormat(Buffer.from("hello")), undefined);
  assert.equal(captureFormatFromPath("/x/a.pcapng"), "pcapng");
  assert.equal(captureFormatFromPath("A.PCAP"), "pcap");
  assert.equal(captureFormatFromPath("a.cap"), "pcap");
  assert.equal(captureFormatFromPath("a.txt"), undefined);
});

test("streaming reads give the same records as reading from memory, for any chunking", async () => {
  for (const bytes of [sampleFullPcapng("big"), sampleFullPcapng("little"), samplePcap("big", "microsecond", 30)]) {
    const expected = [...readCaptureRecords(bytes)].map(comparable);
    for (let seed = 1; seed <= 5; seed++) {
      const reader = await openCapture(chunked(bytes, seed));
      const records: unknown[] = [];
      for await (const record of reader.records()) records.push(comparable(record));
      assert.deepEqual(records, expected);
    }
  }
});

test("openCapture streams a file by path and iterates packets", async () => {
  const directory = temporaryDirectory();
  try {
    const path = join(directory, "sample.pcapng");
    writeFileSync(path, sampleFullPcapng("little"));
    const reader = await openCapture(path, { chunkSize: 64 });
    assert.equal(reader.format, "pcapng");
    assert.equal(reader.section.userApplication, "netbpf test");
    const packets = [];
    for await (const packet of reader) packets.push(packet);
    assert.equal(packets.length, 3);
    assert.equal(reader.interfaces.length, 2);
    assert.equal(reader.sections.length, 1);
    assert.equal(reader.interfaceOf(packets[1]!)!.linkType, LinkType.RAW);
    assert.equal(reader.interfaceOf({ ...packets[1]!, sectionIndex: 1 }), undefined);
    await assert.rejects(async () => {
      for await (const _ of reader) break;
    }, UsageError);
    assert.equal(readCaptureFile(path).packets.length, 3);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("openCapture fails early and clearly", async () => {
  await assert.rejects(openCapture("/nonexistent/nb-pcap.pcap"), (error: unknown) => error instanceof UsageError && /cannot open .*ENOENT/.test(error.message));
  await assert.rejects(openCapture(Readable.from([Buffer.from("not a capture at all")])), CaptureFormatError);
  await assert.rejects(openCapture(Readable.from([])), /the file is empty/);
  assert.throws(() => readCaptureFile("/nonexistent/nb-pcap.pcap"), UsageError);
});

test("a streaming reader does not buffer a corrupt giant block", async () => {
  const bytes = Buffer.from(sampleFullPcapng("little"));
  bytes.writeUInt32LE(0x7ffffffc, 4);
  let pulled = 0;
  async function* endless(): AsyncGenerator<Buffer> {
    yield bytes.subarray(0, 64);
    for (;;) {
      pulled++;
      yield Buffer.alloc(65536);
    }
  }
  await assert.rejects(openCapture(endless(), { maxBlockLength: 1 << 20 }), /block total length 2147483644 is larger than the limit of 1048576/);
  assert.equal(pulled, 0);
});

test("stopping early closes the file", async () => {
  const directory = temporaryDirectory();
  try {
    const path = join(directory, "many.pcap");
    writeFileSync(path, samplePcap("little", "microsecond", 50));
    const reader = await openCapture(path, { chunkSize: 128 });
    let seen = 0;
    for await (const _ of reader) if (++seen === 3) break;
    assert.equal(seen, 3);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("file writers appear only on close(), atomically", async () => {
  const directory = temporaryDirectory();
  try {
    const path = join(directory, "out.pcapng");
    const writer = createCaptureWriter(path, { linkType: LinkType.ETHERNET, section: { userApplication: "netbpf" }, interface: { name: "lo" } });
    assert.ok(writer instanceof PcapngWriter);
    for (const packet of samplePackets(5)) writer.writePacket({ ...packet, process: { pid: 1, command: "init" } });
    assert.equal(existsSync(path), false, "nothing at the target before close()");
    assert.equal(readdirSync(directory).length, 1, "one temporary file");
    assert.match(readdirSync(directory)[0]!, /^\.out\.pcapng\.netbpf-\d+-[0-9a-f]+\.tmp$/);
    await writer.close();
    assert.deepEqual(readdirSync(directory), ["out.pcapng"]);
    const capture = readCapture(readFileSync(path));
    assert.equal(capture.packets.length, 5);
    assert.equal(capture.interfaces[0]!.name, "lo");
    assert.deepEqual(capture.packets[0]!.process, { pid: 1, command: "init" });
    await writer.close();
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("abort() and leaving a using-scope before anything is flushed leave an existing target as it was", async () => {
  const directory = temporaryDirectory();
  try {
    const path = join(directory, "keep.pcap");
    writeFileSync(path, "previous contents");
    const writer = createCaptureWriter(path, { linkType: LinkType.RAW });
    assert.ok(writer instanceof PcapWriter);
    writer.writePacket({ data: Buffer.of(0x45), timestamp: 1n });
    writer.abort();
    writer.abort();
    assert.deepEqual(readdirSync(directory), ["keep.pcap"]);
    assert.equal(readFileSync(path, "utf8"), "previous contents");
    assert.throws(() => writer.writePacket({ data: Buffer.of(0x45) }), NetbpfError);
    {
      using scoped = createCaptureWriter(path, { linkType: LinkType.RAW });
      scoped.writePacket({ data: Buffer.of(0x45), timestamp: 1n });
    }
    assert.deepEqual(readdirSync(directory), ["keep.pcap"]);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("writer creation fails clearly when the directory does not exist", () => {
  assert.throws(() => createCaptureWriter("/nonexistent-nb-pcap/x.pcap", { linkType: 1 }), /cannot create temporary file .*ENOENT/);
});

test("stream writers write straight through", async () => {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  const writer = createCaptureWriter(stream, { linkType: LinkType.ETHERNET, format: "pcapng", resolution: "microsecond" });
  for (const packet of samplePackets(4)) writer.writePacket(packet);
  await writer.close();
  assert.equal(stream.writableEnded, true);
  const capture = readCapture(Buffer.concat(chunks));
  assert.equal(capture.format, "pcapng");
  assert.equal(capture.packets.length, 4);
  assert.deepEqual(capture.interfaces[0]!.timestampResolution, { base: 10, exponent: 6 });
});

test("a failing stream surfaces as an error on the next write", async () => {
  const stream = new PassThrough();
  const writer = createCaptureWriter(stream, { linkType: LinkType.RAW });
  stream.destroy(new Error("EPIPE: reader went away"));
  await new Promise((resolve) => setImmediate(resolve));
  assert.throws(() => writer.writePacket({ data: Buffer.of(1) }), /writing to the output stream failed: EPIPE/);
});

/** Runs a child that writes packets until SIGINT, then calls close() or abort(). */
async function interruptedWriter(path: string, onSignal: "close" | "abort"): Promise<number | null> {
  const module = new URL("../../src/pcap/capture-file.js", import.meta.url).href;
  const script = `
    import { createCaptureWriter } from ${JSON.stringify(module)};
    const writer = createCaptureWriter(${JSON.stringify(path)}, { linkType: 101 });
    process.once("SIGINT", async () => { ${onSignal === "close" ? "await writer.close()" : "writer.abort()"}; process.exit(130); });
    let n = 0;
    const timer = setInterval(() => {
      for (let i = 0; i < 50; i++) writer.writePacket({ data: Buffer.alloc(100, n & 0xff), timestamp: BigInt(++n) * 1000n });
      if (n === 500) process.stdout.write("ready\\n");
    }, 1);
    setTimeout(() => { clearInterval(timer); process.exit(3); }, 10000);
  `;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", () => resolve());
    child.on("exit", (code) => reject(new Error(`child exited early with ${code}`)));
  });
  child.kill("SIGINT");
  return new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}

test("Ctrl-C: a SIGINT handler that calls close() leaves a complete file, abort() leaves nothing", async () => {
  const directory = temporaryDirectory();
  try {
    const closed = join(directory, "closed.pcap");
    assert.equal(await interruptedWriter(closed, "close"), 130);
    const capture = readCapture(readFileSync(closed));
    assert.ok(capture.packets.length >= 500, `${capture.packets.length} packets`);
    capture.packets.forEach((packet, i) => assert.equal(packet.timestamp, BigInt(i + 1) * 1000n));
    const aborted = join(directory, "aborted.pcap");
    assert.equal(await interruptedWriter(aborted, "abort"), 130);
    assert.deepEqual(readdirSync(directory), ["closed.pcap"]);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("input failures while streaming become NetbpfErrors", async () => {
  await assert.rejects(openCapture(Readable.from(["text chunks"])), /gave a string instead of bytes/);
  const directory = temporaryDirectory();
  try {
    await assert.rejects(openCapture(directory), (error: unknown) => error instanceof NetbpfError && /EISDIR/.test(error.message));
    assert.throws(() => readCaptureFile(directory), /cannot open .*EISDIR/);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  async function* failing(): AsyncGenerator<Buffer> {
    yield samplePcap("little", "microsecond", 3).subarray(0, 50);
    throw Object.assign(new Error("device gone"), { code: "EIO" });
  }
  const reader = await openCapture(failing());
  await assert.rejects(async () => {
    for await (const _ of reader);
  }, /reading the input failed: EIO/);
});

test("capture file: options are checked before anything is opened, naming the field", async () => {
  const dir = mkdtempSync(join(tmpdir(), "nb-pcap-options-"));
  try {
    const path = join(dir, "out.pcap");
    const refused = (field: string) => (error: unknown) => error instanceof UsageError && error.message.includes(field);
    assert.throws(() => createCaptureWriter(path, { linkType: 70000 }), refused("options.linkType"));
    assert.throws(() => createCaptureWriter(path, { linkType: 1, format: "pcapx" as "pcap" }), refused("options.format"));
    assert.throws(() => createCaptureWriter(path, { linkType: 1, resolution: "second" as "microsecond" }), refused("options.resolution"));
    assert.throws(() => createCaptureWriter(path, { linkType: 1, atomic: "no" as unknown as boolean }), refused("options.atomic"));
    assert.throws(() => createCaptureWriter({} as unknown as string, { linkType: 1 }), refused("target"));
    assert.deepEqual(readdirSync(dir), [], "a refused writer leaves no file");
    assert.throws(() => readCaptureRecords(Buffer.alloc(0), { maxPacketLength: 0 }), refused("options.maxPacketLength"));
    assert.throws(() => readCaptureFile(path, { maxBlockLength: -1 }), refused("options.maxBlockLength"));
    await assert.rejects(openCapture(path, { chunkSize: 1.5 }), refused("options.chunkSize"));
    await assert.rejects(openCapture(42 as unknown as string), refused("source"));
    assert.throws(() => detectCaptureFormat("abcd" as unknown as Uint8Array), refused("bytes"));
    assert.throws(() => captureFormatFromPath(undefined as unknown as string), refused("path"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
