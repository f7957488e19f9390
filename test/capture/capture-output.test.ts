import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CaptureOutput, formatFileTime } from "../../src/capture/capture-output.js";
import { UsageError } from "../../src/sys/errors.js";

const refused = (field: string) => (error: unknown) => error instanceof UsageError && error.message.includes(field);

test("formatFileTime: tcpdump's -G fields, and its arguments checked", () => {
  const date = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  assert.equal(formatFileTime("cap-%Y%m%d-%H%M%S-%s-%%.pcap", date, "utc"), "cap-20260102-030405-1767323045-%.pcap");
  assert.throws(() => formatFileTime(42 as unknown as string, date), refused("pattern"));
  assert.throws(() => formatFileTime("x", new Date(Number.NaN)), refused("date"));
  assert.throws(() => formatFileTime("x", date, "mars" as "utc"), refused("timeZone"));
});

test("CaptureOutput: wrong options are refused before a file is opened", () => {
  const dir = mkdtempSync(join(tmpdir(), "nb-capture-output-"));
  try {
    const target = join(dir, "out.pcap");
    assert.throws(() => new CaptureOutput(undefined as never), refused("options"));
    assert.throws(() => new CaptureOutput({ target: "" }), refused("options.target"));
    assert.throws(() => new CaptureOutput({ target, rotateBytes: 0 }), refused("options.rotateBytes"));
    assert.throws(() => new CaptureOutput({ target, rotateSeconds: -1 }), refused("options.rotateSeconds"));
    assert.throws(() => new CaptureOutput({ target, rotateSeconds: 60, fileCount: 1.5 }), refused("options.fileCount"));
    assert.throws(() => new CaptureOutput({ target, timeZone: "gmt" as "utc" }), refused("options.timeZone"));
    assert.throws(() => new CaptureOutput({ target }, Number.NaN), refused("now"));
    assert.deepEqual(readdirSync(dir), []);
    const output = new CaptureOutput({ target, rotateBytes: 1000, fileCount: 3 });
    assert.equal(output.path, `${target}0`);
    output.abort();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
