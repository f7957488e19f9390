import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { after, test, type TestContext } from "node:test";
import { gunzipSync } from "node:zlib";
import { Collection } from "../../src/core/collection.js";
import { loadCollectionSpec } from "../../src/elf/collection-spec.js";
import { ElfFormatError } from "../../src/elf/elf-format-error.js";
import { kernelVersionCode } from "../../src/btf/kernel-symbols.js";
import { planAttachment } from "../../src/cli/load-command.js";
import { attachRawTracepoint } from "../../src/link/raw-tracepoint.js";
import { MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { possibleCpuCount } from "../../src/sys/cpus.js";
import { UsageError } from "../../src/sys/errors.js";
import { buildLibbpfLoader, buildObject, scratchFolder, toolsAvailable } from "../elf/build-object.js";
import { isRoot, skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";

let workspace: { path: string; remove(): void } | undefined;
after(() => workspace?.remove());

function setUp(t: TestContext, needsKernel = true): string | undefined {
  if (needsKernel && skipUnlessKernel(t, isRoot() && existsSync("/sys/kernel/btf/vmlinux") && existsSync("/sys/fs/bpf"), "needs root, bpffs and kernel BTF")) return undefined;
  if (skipUnlessTool(t, toolsAvailable().clang, "needs clang")) return undefined;
  workspace ??= scratchFolder("externs");
  return workspace.path;
}

const header = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n";
const license = 'char LICENSE[] SEC("license") = "GPL";\n';

function kernelConfig(): Map<string, string> {
  const text = existsSync("/proc/config.gz") ? gunzipSync(readFileSync("/proc/config.gz")).toString() : "";
  return new Map(text.split("\n").filter((line) => line.startsWith("CONFIG_")).map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));
}

function ipv4Frame(): Buffer {
  const frame = Buffer.alloc(64);
  frame.writeUInt16BE(0x0800, 12);
  frame[14] = 0x45;
  frame.writeUInt16BE(50, 16);
  frame[22] = 64;
  frame[23] = 6;
  return frame;
}

test(".kconfig values, untyped __ksym addresses and kfunc calls resolve against the running kernel, as libbpf resolves them", (t) => {
  const directory = setUp(t);
  if (!directory) return;
  const config = kernelConfig();
  if (skipUnlessKernel(t, config.size > 0, "needs /proc/config.gz")) return;
  const object = buildObject(directory, "externs.c", "externs.o");
  const spec = loadCollectionSpec(object);
  assert.deepEqual(Object.fromEntries(Object.values(spec.externs!).map((extern) => [extern.name, [extern.kind, extern.weak]])), {
    bpf_skb_ct_lookup: ["kfunc", false], bpf_ct_release: ["kfunc", false], LINUX_KERNEL_VERSION: ["kconfig", false], CONFIG_BPF_SYSCALL: ["kconfig", false],
    CONFIG_NETBPF_TEST_NEVER_SET: ["kconfig", true], CONFIG_HZ: ["kconfig", false], CONFIG_DEFAULT_HOSTNAME: ["kconfig", true], _stext: ["ksym", false], bpf_prog_active: ["ksym", false],
  });
  using collection = Collection.load(spec, { programs: ["externs"], btf: true });
  assert.equal(collection.report.kconfigSource, "/proc/config.gz");
  assert.equal(collection.maps[".kconfig"]!.type, MapType.Array);
  collection.programs.externs!.run({ data: ipv4Frame() });
  const bss = collection.maps[".bss"]!.get(Buffer.alloc(4))!;
  const result = (index: number) => bss.readBigUInt64LE(index * 8);
  assert.equal(result(0), BigInt(kernelVersionCode()), "LINUX_KERNEL_VERSION");
  assert.equal(result(1), config.get("CONFIG_BPF_SYSCALL") === "y" ? 1n : 0n, "CONFIG_BPF_SYSCALL (bool)");
  assert.equal(result(2), 0n, "a weak CONFIG_ the kernel lacks reads 0");
  assert.equal(result(3), BigInt(config.get("CONFIG_HZ")!), "CONFIG_HZ (int)");
  const stext = /^([0-9a-f]+) \S+ _stext$/m.exec(readFileSync("/proc/kallsyms", "latin1"))![1]!;
  assert.equal(result(4), BigInt(`0x${stext}`), "untyped __ksym _stext from /proc/kallsyms");
  assert.notEqual(result(6), 0n, "the conntrack kfunc ran and set opts.error (no such connection)");
  const hostname = (config.get("CONFIG_DEFAULT_HOSTNAME") ?? '""').slice(1, -1);
  assert.equal(bss.subarray(64, 80).toString("latin1").replace(/\0+$/, ""), hostname, "CONFIG_DEFAULT_HOSTNAME (char array)");

  // Each program loads through netbpf exactly when it loads through libbpf.
  if (skipUnlessTool(t, toolsAvailable().libbpf, "needs libbpf-dev for the comparison")) return;
  const loader = buildLibbpfLoader(directory);
  const reference = spawnSync(loader, ["probe", object], { encoding: "utf8" });
  const libbpf = reference.stdout.trim().split("\n").map((line) => JSON.parse(line) as { program: string; loaded: boolean });
  assert.equal(libbpf.length, Object.keys(spec.programs).length, reference.stdout);
  for (const { program, loaded } of libbpf) {
    let ours = true;
    try {
      Collection.load(spec, { programs: [program] }).close();
    } catch {
      ours = false;
    }
    assert.equal(ours, loaded, `program ${program}: libbpf ${loaded ? "loads" : "refuses"} it`);
  }
});

test("__weak kfuncs: their address tells whether the kernel has them, and a call to a missing one is accepted in dead code (as libbpf)", (t) => {
  const directory = setUp(t);
  if (!directory) return;
  const object = buildObject(directory, `${header}
struct nf_conn { int unused; };
extern void bpf_ct_release(struct nf_conn *) __ksym __weak;
extern int netbpf_no_such_kfunc(int) __ksym __weak;
__u64 seen[2];
SEC("tc") int weak_kfuncs(struct __sk_buff *skb) {
  seen[0] = !!bpf_ct_release;
  seen[1] = !!netbpf_no_such_kfunc;
  if (netbpf_no_such_kfunc) return netbpf_no_such_kfunc(1);
  return 0;
}
${license}`, "weak-kfuncs.o");
  using collection = Collection.load(loadCollectionSpec(object), { btf: true });
  assert.equal(collection.programs.weak_kfuncs!.run({ data: ipv4Frame() }).returnValue, 0);
  const seen = collection.maps[".bss"]!.get(Buffer.alloc(4))!;
  assert.deepEqual([seen.readBigUInt64LE(0), seen.readBigUInt64LE(8)], [1n, 0n]);
  if (skipUnlessTool(t, toolsAvailable().libbpf, "needs libbpf-dev for the comparison")) return;
  const reference = spawnSync(buildLibbpfLoader(directory), ["probe", object], { encoding: "utf8" });
  assert.match(reference.stdout, /"program":"weak_kfuncs".*"loaded":true/, "libbpf loads it too");
});

test("an unresolved symbol refuses only the program that uses it; the others stay loadable", (t) => {
  const directory = setUp(t);
  if (!directory) return;
  const object = buildObject(directory, `${header}
extern int netbpf_no_such_function(int) __attribute__((weak));
extern int netbpf_no_such_kfunc(int) __ksym;
int counter;
SEC("socket") int uses_missing(void *ctx) { return netbpf_no_such_function(1); }
SEC("socket") int uses_missing_kfunc(void *ctx) { return netbpf_no_such_kfunc(1); }
SEC("socket") int valid(void *ctx) { counter++; return 0; }
${license}`, "unresolved.o");
  const spec = loadCollectionSpec(object);
  assert.deepEqual(Object.keys(spec.programs).sort(), ["uses_missing", "uses_missing_kfunc", "valid"]);
  assert.throws(() => Collection.load(spec), (error: unknown) => error instanceof UsageError && /program "uses_missing" .*"netbpf_no_such_function": it is not defined in this object/.test(error.message));
  assert.throws(() => Collection.load(spec, { programs: ["uses_missing_kfunc"] }),
    (error: unknown) => error instanceof UsageError && /"netbpf_no_such_kfunc": the kernel's BTF has no such kernel function/.test(error.message));
  using collection = Collection.load(spec, { programs: ["valid"] });
  collection.programs.valid!.run({ data: ipv4Frame() });
  assert.equal(collection.maps[".bss"]!.get(Buffer.alloc(4))!.readUInt32LE(0), 1);
});

test("tp_btf programs get their attach BTF id from kernel BTF, attach, and see TCP state changes", async (t) => {
  const directory = setUp(t);
  if (!directory) return;
  const spec = loadCollectionSpec(buildObject(directory, "tp-btf.c", "tp-btf.o"));
  assert.equal(spec.programs.on_state!.type, ProgramType.Tracing);
  assert.deepEqual(planAttachment(spec.programs.on_state!, {}), { kind: "rawTracepoint", name: "inet_sock_set_state" }, "netbpf load attaches it");
  using collection = Collection.load(spec);
  using link = attachRawTracepoint(collection.programs.on_state!, "inet_sock_set_state");
  const { createServer, connect } = await import("node:net");
  const server = createServer((socket) => socket.end()).listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  await new Promise<void>((resolve) => {
    const socket = connect((server.address() as { port: number }).port, "127.0.0.1", () => socket.end());
    socket.resume();
    socket.on("close", () => resolve());
  });
  server.close();
  link.close();
  const established = Buffer.alloc(4);
  established.writeUInt32LE(1); // TCP_ESTABLISHED
  assert.ok(collection.maps.states!.get(established)!.readBigUInt64LE(0) >= 2n, "both ends became ESTABLISHED");
  const missing = loadCollectionSpec(buildObject(directory, `${header}SEC("tp_btf/netbpf_no_such_tracepoint") int on_nothing(void *ctx) { return 0; }\n${license}`, "tp-btf-missing.o"));
  assert.throws(() => Collection.load(missing), (error: unknown) => error instanceof UsageError && /no tracepoint "netbpf_no_such_tracepoint" \(no btf_trace_netbpf_no_such_tracepoint type\)/.test(error.message));
});

test("map shapes: perf event arrays sized for the possible CPUs with 4-byte keys and values, ring buffers rounded up, __ulong attributes", (t) => {
  const directory = setUp(t);
  if (!directory) return;
  const object = buildObject(directory, `${header}
#ifndef __ulong
#define __ulong(name, val) enum { ___netbpf_##name = val } name
#endif
struct event { __u64 a, b; };
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); } bare SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __type(key, int); __type(value, struct event); } typed SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 5000); } ring SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_BLOOM_FILTER); __uint(max_entries, 16); __type(value, __u32); __ulong(map_extra, 3); } bloom SEC(".maps");
SEC("socket") int use(void *ctx) {
  struct event e = {};
  __u32 v = 1;
  bpf_perf_event_output(ctx, &bare, BPF_F_CURRENT_CPU, &e, sizeof(e));
  bpf_perf_event_output(ctx, &typed, BPF_F_CURRENT_CPU, &e, sizeof(e));
  bpf_ringbuf_output(&ring, &e, sizeof(e), 0);
  bpf_map_push_elem(&bloom, &v, 0);
  return 0;
}
${license}`, "shapes.o");
  const spec = loadCollectionSpec(object);
  for (const name of ["bare", "typed"]) {
    const map = spec.maps[name]!;
    assert.deepEqual([map.keySize, map.valueSize, map.maxEntries, map.btfValueTypeId], [4, 4, 0, 0], name);
  }
  assert.equal(spec.maps.bloom!.mapExtra, 3n);
  using collection = Collection.load(spec);
  assert.equal(collection.maps.bare!.maxEntries, possibleCpuCount());
  assert.equal(collection.maps.typed!.maxEntries, possibleCpuCount());
  assert.equal(collection.maps.ring!.maxEntries, 8192);
  assert.equal(collection.maps.bloom!.info().mapExtra, 3n);
});

test("subprograms in .text.* sections (clang -ffunction-sections) are linked into the programs that call them", (t) => {
  const directory = setUp(t);
  if (!directory) return;
  const object = buildObject(directory, `${header}
__u64 total;
static __attribute__((noinline)) int add(int value) { total += value; return value; }
__attribute__((noinline)) int twice(int value) { return add(value) + add(value); }
SEC("socket") int caller(void *ctx) { return twice(3) == 6 ? 0 : 1; }
${license}`, "function-sections.o", ["-ffunction-sections"]);
  const spec = loadCollectionSpec(object);
  assert.deepEqual(Object.keys(spec.programs), ["caller"]);
  assert.deepEqual(spec.programs.caller!.functions.map((f) => f.name).sort(), ["add", "caller", "twice"]);
  using collection = Collection.load(spec);
  assert.equal(collection.programs.caller!.run({ data: ipv4Frame() }).returnValue, 0);
  assert.equal(collection.maps[".bss"]!.get(Buffer.alloc(4))!.readBigUInt64LE(0), 6n);
});

test("objects linked by bpftool gen object: legacy map records of discarded weak definitions", (t) => {
  const directory = setUp(t);
  if (!directory) return;
  if (skipUnlessTool(t, toolsAvailable().bpftool, "needs bpftool")) return;
  const definition = "struct legacy_map { unsigned int type, key_size, value_size, max_entries, map_flags; };\n";
  const first = buildObject(directory, `${header}${definition}
struct legacy_map __attribute__((weak)) shared SEC("maps") = { BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0 };
struct legacy_map only_first SEC("maps") = { BPF_MAP_TYPE_ARRAY, 4, 4, 2, 0 };
SEC("socket") int first(void *ctx) { __u32 k = 0; __u64 *v = bpf_map_lookup_elem(&shared, &k); if (v) *v += 1; return 0; }
${license}`, "weak-first.o");
  const second = buildObject(directory, `${header}${definition}
struct legacy_map __attribute__((weak)) shared SEC("maps") = { BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0 };
struct legacy_map only_second SEC("maps") = { BPF_MAP_TYPE_HASH, 4, 4, 8, 0 };
SEC("socket") int second(void *ctx) { __u32 k = 0; __u64 *v = bpf_map_lookup_elem(&shared, &k); if (v) *v += 2; return 0; }
`, "weak-second.o");
  const linked = join(directory, "linked.o");
  execFileSync("bpftool", ["gen", "object", linked, first, second], { stdio: "pipe" });
  const spec = loadCollectionSpec(linked);
  assert.deepEqual(Object.values(spec.maps).filter((map) => map.section === "maps").map((map) => [map.name, map.type, map.keySize, map.valueSize, map.maxEntries]).sort(),
    [["only_first", MapType.Array, 4, 4, 2], ["only_second", MapType.Hash, 4, 4, 8], ["shared", MapType.Array, 4, 8, 4]]);
  using collection = Collection.load(spec);
  collection.programs.first!.run({ data: ipv4Frame() });
  collection.programs.second!.run({ data: ipv4Frame() });
  assert.equal(collection.maps.shared!.get(Buffer.alloc(4))!.readBigUInt64LE(0), 3n, "both programs use the one shared map");
});

test("what netbpf cannot load is refused with a reason: struct_ops sections, iproute2's legacy pinning field", (t) => {
  const directory = setUp(t, false);
  if (!directory) return;
  const structOps = loadCollectionSpec(buildObject(directory, `${header}
struct netbpf_ops { int (*run)(void); };
SEC("struct_ops/run") int run_it(void *ctx) { return 0; }
SEC(".struct_ops") struct netbpf_ops ops = { .run = (void *)run_it };
${license}`, "struct-ops.o"));
  assert.deepEqual(structOps.structOpsSections, [".struct_ops"]);
  assert.throws(() => Collection.load(structOps), (error: unknown) => error instanceof UsageError && /\.struct_ops \(struct_ops maps\), which netbpf cannot load/.test(error.message));
  const iproute2 = `${header}
struct bpf_elf_map { __u32 type, size_key, size_value, max_elem, flags, id, pinning, inner_id, inner_idx; };
struct bpf_elf_map SEC("maps") pinned = { .type = BPF_MAP_TYPE_ARRAY, .size_key = 4, .size_value = 4, .max_elem = 1, .pinning = PINNING };
SEC("classifier") int cls(struct __sk_buff *skb) { __u32 k = 0; return bpf_map_lookup_elem(&pinned, &k) ? 0 : 1; }
${license}`;
  assert.throws(() => loadCollectionSpec(buildObject(directory, iproute2, "iproute2-pinned.o", ["-DPINNING=2"])),
    (error: unknown) => error instanceof ElfFormatError && /legacy map "pinned" sets iproute2's "pinning" field to 2/.test(error.message));
  const unpinned = loadCollectionSpec(buildObject(directory, iproute2, "iproute2-unpinned.o", ["-DPINNING=0"]));
  assert.deepEqual([unpinned.maps.pinned!.keySize, unpinned.maps.pinned!.valueSize, unpinned.maps.pinned!.maxEntries], [4, 4, 1]);
});

test("a load that fails after pinning removes the pins and the folders it created", (t) => {
  const directory = setUp(t);
  if (!directory) return;
  const root = `/sys/fs/bpf/netbpf-test-nbf2-${randomBytes(4).toString("hex")}`;
  t.after(() => execFileSync("rm", ["-rf", root]));
  const spec = loadCollectionSpec(buildObject(directory, `${header}
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); __uint(pinning, LIBBPF_PIN_BY_NAME); } kept SEC(".maps");
extern int netbpf_no_such_kfunc(int) __ksym;
SEC("socket") int broken(void *ctx) { __u32 k = 0; bpf_map_lookup_elem(&kept, &k); return netbpf_no_such_kfunc(0); }
${license}`, "pinned-rollback.o"));
  assert.throws(() => Collection.load(spec, { pinPath: `${root}/nested/deeper` }), UsageError);
  assert.equal(existsSync(root), false, "the folders made for the pins are gone");
});
