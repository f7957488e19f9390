import { test } from "node:test";
import assert from "node:assert/strict";
import { Program } from "../../src/core/program.js";
import { ProgramType } from "../../src/sys/bpf-constants.js";
import { SyscallError, UnsupportedFeatureError, UsageError, VerifierError } from "../../src/sys/errors.js";
import { summarizeVerifierLog } from "../../src/sys/verifier-log.js";
import { bpffsFolder } from "../support/bpffs.js";
import { isRoot, skipUnlessKernel, skipUnlessRoot } from "../support/kernel.js";

// r0 = *(u32 *)(r1 + 0)   (skb->len for a socket filter); exit
const returnLength = Buffer.from("6110000000000000" + "bf01000000000000" + "9500000000000000", "hex");
// r0 = 2 (XDP_PASS); exit
const xdpPass = Buffer.from("b700000002000000" + "9500000000000000", "hex");

test("load and run a socket filter with BPF_PROG_TEST_RUN", (t) => {
  if (skipUnlessRoot(t, "to load programs")) return;
  // r1 = *(u32 *)(r1 + 0) (skb->len); r0 = r1; exit
  using program = Program.load({ type: ProgramType.SocketFilter, instructions: returnLength, name: "t_len" });
  const packet = Buffer.alloc(60, 0xab);
  const result = program.run({ data: packet, repeat: 1000 });
  // The kernel treats the data as an Ethernet frame and the socket filter sees it from the network header on.
  assert.equal(result.returnValue, 60 - 14);
  assert.ok(result.duration >= 0);
  const info = program.info();
  assert.equal(info.type, ProgramType.SocketFilter);
  assert.equal(info.name, "t_len");
  assert.equal(info.tag.length, 16);
});

test("XDP program returns XDP_PASS and hands the packet back", (t) => {
  if (skipUnlessRoot(t, "to load programs")) return;
  using program = Program.load({ type: ProgramType.Xdp, instructions: xdpPass, name: "t_xdp" });
  const packet = Buffer.alloc(64, 7);
  const result = program.run({ data: packet });
  assert.equal(result.returnValue, 2);
  assert.deepEqual(result.dataOut, packet);
});

test("a rejected program raises VerifierError with the full log and a summary", (t) => {
  if (skipUnlessRoot(t, "to load programs")) return;
  // exit without setting r0
  const bad = Buffer.from("9500000000000000", "hex");
  assert.throws(
    () => Program.load({ type: ProgramType.SocketFilter, instructions: bad }),
    (e: unknown) => {
      assert.ok(e instanceof VerifierError);
      assert.match(e.log, /R0 !read_ok/);
      assert.equal(e.summary.instruction, 0);
      assert.equal(e.summary.instructionText, "exit");
      assert.match(e.message, /instruction 0 \(exit\): R0 !read_ok/);
      return true;
    },
  );
});

test("the verifier log can be requested and is grown to fit", (t) => {
  if (skipUnlessRoot(t, "to load programs")) return;
  using program = Program.load({ type: ProgramType.SocketFilter, instructions: returnLength }, { logLevel: 2, logSize: 64 });
  assert.match(program.verifierLog, /processed \d+ insns/);
});

test("summarizeVerifierLog finds the failing instruction", () => {
  const log = "0: R1=ctx() R10=fp0\n0: (61) r2 = *(u32 *)(r1 +76)     ; R1=ctx() R2_w=pkt()\n1: (71) r0 = *(u8 *)(r2 +0)\ninvalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)\nR2 offset is outside of the packet\nprocessed 2 insns (limit 1000000)\n";
  const summary = summarizeVerifierLog(log);
  assert.equal(summary.instruction, 1);
  assert.equal(summary.instructionText, "r0 = *(u8 *)(r2 +0)");
  assert.equal(summary.message, "R2 offset is outside of the packet");
});

test("a type that needs an expected attach type is not reported missing when another attribute is wrong", () => {
  // cgroup_sock_addr loads only with an expected attach type: the program-type probe (features) knows that, so a bad
  // flag stays a plain EINVAL instead of "this kernel does not support CgroupSockAddr programs".
  assert.throws(() => Program.load({ type: ProgramType.CgroupSockAddr, instructions: xdpPass, flags: 1 << 30 }),
    (e: unknown) => e instanceof SyscallError && e.code === "EINVAL" && !(e instanceof UnsupportedFeatureError));
});

test("invalid specs are refused before the kernel sees them", () => {
  assert.throws(() => Program.load({ type: ProgramType.SocketFilter, instructions: Buffer.alloc(5) }), UsageError);
  assert.throws(() => Program.load({ type: ProgramType.SocketFilter, instructions: xdpPass, name: "no spaces" }), UsageError);
});

test("a program type the kernel does not have gives UnsupportedFeatureError", (t) => {
  if (skipUnlessRoot(t, "to load programs")) return;
  assert.throws(() => Program.load({ type: 999 as ProgramType, instructions: xdpPass }), (e: unknown) =>
    e instanceof UnsupportedFeatureError && /this kernel does not support program type 999 programs/.test(e.message) && /netbpf features/.test(e.message));
  // A known type with a bad attribute is not reported as a missing feature.
  assert.throws(() => Program.load({ type: ProgramType.SocketFilter, instructions: xdpPass, flags: 1 << 30 }), (e: unknown) => e instanceof SyscallError && e.code === "EINVAL" && !(e instanceof UnsupportedFeatureError));
});

test("without privileges, loading says what is missing", async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root to drop privileges in a child process")) return;
  const { spawnSync } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  const programModule = fileURLToPath(new URL("../../src/core/program.js", import.meta.url));
  const script = `import("${programModule}").then(({ Program }) => { try { Program.load({ type: 1, instructions: Buffer.from("b7000000000000009500000000000000", "hex") }); console.log("loaded"); } catch (e) { console.log(e.constructor.name + ": " + e.message); } });`;
  // Keep uid 0 (so the checkout is readable wherever it lives) but drop every
  // capability: the kernel refuses bpf(2), and the hint names what is missing.
  const result = spawnSync("setpriv", ["--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", process.execPath, "-e", script], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /SyscallError: program load: failed with EPERM \(the process lacks CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN: run as root, or grant them\)/);
});

test("pin, open pinned and open by id", (t) => {
  if (skipUnlessRoot(t, "to load programs")) return;
  const folder = bpffsFolder("prog");
  try {
    const program = Program.load({ type: ProgramType.Xdp, instructions: xdpPass, name: "t_pin" });
    const id = program.id;
    program.pin(`${folder.path}/prog`);
    program.close();
    using pinned = Program.openPinned(`${folder.path}/prog`);
    assert.equal(pinned.id, id);
    assert.equal(pinned.type, ProgramType.Xdp);
    using byId = Program.fromId(id);
    assert.equal(byId.name, "t_pin");
    assert.equal(byId.run({ data: Buffer.alloc(64) }).returnValue, 2);
  } finally {
    folder.remove();
  }
});

test("an assembled program with a map reference loads and counts into the map", async (t) => {
  if (skipUnlessRoot(t, "to load programs")) return;
  const { Assembler, R0, R1, R2, R10 } = await import("../../src/asm/assembler.js");
  const { BpfMap } = await import("../../src/core/map.js");
  const { MapType } = await import("../../src/sys/bpf-constants.js");
  const { u32, u64 } = await import("../../src/core/codec.js");
  using counters = BpfMap.create({ type: MapType.Array, key: u32, value: u64, maxEntries: 1 });
  const assembled = new Assembler()
    .store("u32", R10, -4, 0)
    .mov64(R2, R10).add64(R2, -4)
    .loadMapFd(R1, "counters")
    .call("map_lookup_elem")
    .jumpIf(R0, "==", 0, "out")
    .mov64(R1, 1)
    .atomic("u64", "add", R0, 0, R1)
    .label("out")
    .return(0)
    .finish();
  assert.throws(() => Program.load({ type: ProgramType.SocketFilter, instructions: assembled }), /no file descriptor for map "counters"/);
  using program = Program.load({ type: ProgramType.SocketFilter, instructions: assembled }, { maps: { counters } });
  program.run({ data: Buffer.alloc(64), repeat: 25 });
  assert.equal(counters.get(0), 25n);
});

test("raw tracepoint programs test-run without data or repeat", (t) => {
  if (skipUnlessRoot(t, "to load programs")) return;
  using program = Program.load({ type: ProgramType.RawTracepoint, instructions: Buffer.from("b7000000070000009500000000000000", "hex"), name: "t_raw" });
  assert.equal(program.run({ context: Buffer.alloc(16) }).returnValue, 7);
});
