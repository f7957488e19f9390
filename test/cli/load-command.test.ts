import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { getFdById } from "../../src/sys/bpf.js";
import { FileDescriptor } from "../../src/sys/file-descriptor.js";
import { planAttachment } from "../../src/cli/load-command.js";
import type { CollectionProgramSpec } from "../../src/elf/collection-spec.js";
import { programKindOfSection } from "../../src/elf/section-names.js";
import { AttachType } from "../../src/sys/bpf-constants.js";
import { cliPath, runCli } from "../support/cli.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";
import { Testbed, udpSenderScript } from "../support/testbed.js";
import { TestCgroup } from "../support/cgroup.js";
import { genObject } from "../gen/fixture.js";

const rejectedObject = fileURLToPath(new URL("../../../test/fixtures/verifier/rejected.o", import.meta.url));

function kernelAvailable(t: TestContext): boolean {
  return !skipUnlessKernel(t, isRoot() && existsSync("/sys/fs/bpf"), "needs root and bpffs for bpf(2)");
}

/** Whether a BPF link with this id still exists (asks for that id only: listing every link races with other processes' links). */
function linkExists(id: number): boolean {
  const fd = getFdById("link", id);
  if (fd === undefined) return false;
  new FileDescriptor(fd).close();
  return true;
}

/** A running `netbpf load`: its JSON lines as they arrive, and its exit. */
class RunningCli {
  readonly lines: Record<string, any>[] = [];
  stderr = "";
  readonly exited: Promise<number | null>;
  readonly #child: ChildProcess;
  #waiters: (() => void)[] = [];

  constructor(command: string, args: string[]) {
    this.#child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let pending = "";
    this.#child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      pending += chunk;
      const parts = pending.split("\n");
      pending = parts.pop()!;
      for (const part of parts) if (part.trim()) this.lines.push(JSON.parse(part));
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.#child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.#child.on("exit", (code) => {
      for (const wake of this.#waiters.splice(0)) wake();
      resolve(code);
    }));
  }

  /** Waits until a line matching `predicate` has arrived (or fails after `timeout` ms or when the process exits). */
  async waitFor(predicate: (line: Record<string, any>) => boolean, timeout = 10_000): Promise<Record<string, any>> {
    const deadline = Date.now() + timeout;
    let exited = false;
    void this.exited.then(() => (exited = true));
    for (;;) {
      const found = this.lines.find(predicate);
      if (found) return found;
      if (exited || Date.now() > deadline) throw new Error(`no matching line; got ${JSON.stringify(this.lines)}; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  interrupt(): void {
    this.#child.kill("SIGINT");
  }

  kill(): void {
    if (this.#child.exitCode === null) this.#child.kill("SIGKILL");
  }
}

test("netbpf load streams ring buffer events of a tracepoint program as JSON lines", async (t) => {
  if (!kernelAvailable(t)) return;
  const server = net.createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const cli = new RunningCli(process.execPath, [cliPath, "load", genObject, "--program", "on_state", "--set", `watched_port=${port}`,
    "--ringbuf", "events", "--type", "state_event", "--json", "--duration", "20"]);
  t.after(() => cli.kill());
  const attached = await cli.waitFor((l) => l.type === "attached");
  assert.equal(attached.program, "on_state");
  assert.match(attached.hook, /sock:inet_sock_set_state/);
  await new Promise<void>((resolve, reject) => {
    const client = net.connect(port, "127.0.0.1", () => client.end());
    client.on("error", reject);
    client.on("close", () => resolve());
  });
  const established = await cli.waitFor((l) => l.type === "event" && l.value.new_state === 1 && l.value.dport === port);
  assert.equal(established.map, "events");
  assert.equal(established.value.old_state, 2, "SYN_SENT → ESTABLISHED");
  assert.equal(established.value.saddr, "7f000001");
  assert.equal(established.value.daddr, "7f000001");
  assert.equal(typeof established.value.comm, "string");
  for (const line of cli.lines.filter((l) => l.type === "event")) {
    assert.ok(line.value.sport === port || line.value.dport === port, `the watched_port constant filters events: ${JSON.stringify(line)}`);
  }
  cli.interrupt();
  assert.equal(await cli.exited, 0, cli.stderr);
  const stopped = cli.lines.at(-1)!;
  assert.equal(stopped.type, "stopped");
  assert.equal(stopped.events, cli.lines.filter((l) => l.type === "event").length);
  if (attached.linkId !== undefined) assert.ok(!linkExists(attached.linkId), "no link is left after Ctrl-C");
});

test("netbpf load attaches a tc program on a veth by its section and dumps a counter map", async (t) => {
  if (!kernelAvailable(t)) return;
  const bed = Testbed.create("gen");
  t.after(() => bed.destroy());
  const cli = new RunningCli("ip", ["netns", "exec", bed.a.namespace, process.execPath, cliPath, "load", genObject,
    "--program", "count_packets", "--program", "count_xdp", "-i", bed.a.interface, "--xdp-mode", "generic", "--dump", "counters", "--json", "--duration", "20"]);
  t.after(() => cli.kill());
  const attached = await cli.waitFor((l) => l.type === "attached" && l.program === "count_packets");
  assert.match(attached.hook, new RegExp(`ingress.*${bed.a.interface}|${bed.a.interface}.*ingress`));
  const xdp = await cli.waitFor((l) => l.type === "attached" && l.program === "count_xdp");
  assert.match(xdp.hook, new RegExp(`xdp generic on ${bed.a.interface}`));
  bed.node(bed.b, udpSenderScript(bed.a.address, 9, 20));
  cli.interrupt();
  assert.equal(await cli.exited, 0, cli.stderr);
  const dump = cli.lines.filter((l) => l.type === "dump" && l.map === "counters");
  assert.equal(dump.length, 5, "every element of the array map");
  const packets = dump.find((l) => l.key === 1)!.value;
  const bytes = dump.find((l) => l.key === 2)!.value;
  assert.ok(packets >= 20, `counted ${packets} packets on ingress, sent 20 datagrams`);
  assert.ok(bytes >= packets * 42, `counted ${bytes} bytes`);
  assert.equal(dump.find((l) => l.key === 0)!.value, 0, "the socket program was not loaded");
  const xdpPackets = dump.find((l) => l.key === 3)!.value;
  assert.ok(xdpPackets >= 20, `XDP counted ${xdpPackets} packets`);
  for (const link of [attached, xdp]) {
    if (link.linkId !== undefined) assert.ok(!linkExists(link.linkId), `no link of ${link.program} is left after exit`);
  }
});

test("netbpf load attaches a cgroup program to the cgroup given with --cgroup", async (t) => {
  if (!kernelAvailable(t)) return;
  const cgroup = TestCgroup.create("gen");
  t.after(() => cgroup.destroy());
  const cli = new RunningCli(process.execPath, [cliPath, "load", genObject, "--program", "count_egress", "--cgroup", cgroup.path, "--dump", "counters", "--json", "--duration", "20"]);
  t.after(() => cli.kill());
  const attached = await cli.waitFor((l) => l.type === "attached");
  assert.equal(attached.program, "count_egress");
  await cgroup.run(udpSenderScript("127.0.0.1", 9, 7));
  cli.interrupt();
  assert.equal(await cli.exited, 0, cli.stderr);
  const egress = cli.lines.find((l) => l.type === "dump" && l.key === 4)!.value;
  assert.ok(egress >= 7, `counted ${egress} packets leaving the cgroup, sent 7 datagrams`);
  if (attached.linkId !== undefined) assert.ok(!linkExists(attached.linkId), "no link is left after exit");
});

test("netbpf load: a tc program without -i says what to do", () => {
  const { status, stderr } = runCli(["load", genObject, "--program", "count_packets"]);
  assert.equal(status, 2);
  assert.match(stderr, /program "count_packets" \(section "tc\/ingress"\) attaches to tc ingress.*no interface was given.*-i\/--interface/);
  assert.doesNotMatch(stderr, /at .*\.js:\d+/);
});

test("netbpf load: unknown programs, bad --set values and bad map names are refused before loading", () => {
  const cases: [string[], RegExp][] = [
    [["--program", "nope"], /no program "nope" \(programs: scale, count_packets, count_xdp, count_egress, on_state\)/],
    [["--program", "scale", "--set", "multiplier"], /--set "multiplier" is not NAME=VALUE/],
    [["--program", "scale", "--set", "multiplier=three"], /"three" is not an integer/],
    [["--program", "scale", "--set", "nope=1"], /no global variable "nope".*multiplier/],
    [["--program", "scale", "--set", "watched_port=70000"], /70000 does not fit in watched_port \(2 bytes\)/],
    [["--program", "scale", "--dump", "nope"], /--dump nope: the object has no map "nope"/],
    [["--program", "scale", "--dump", "events"], /Ringbuf map streams events.*--ringbuf/],
    [["--program", "scale", "--ringbuf", "counters"], /not a Ringbuf/],
    [["--program", "scale", "--ringbuf", "events", "--type", "nope"], /no struct, union or typedef named "nope"/],
    // (--type without --ringbuf decodes the object's only ring buffer, "events": streamed by default.)
    [["--program", "scale", "--duration", "soon"], /--duration "soon" is not a positive number/],
    [["--program", "count_packets", "-i", "nb-gen-none0"], /no network interface named nb-gen-none0/],
  ];
  for (const [args, expected] of cases) {
    const { status, stderr } = runCli(["load", genObject, ...args]);
    assert.equal(status, 2, args.join(" "));
    assert.match(stderr, expected, args.join(" "));
  }
  const missing = runCli(["load", join(fileURLToPath(new URL(".", import.meta.url)), "missing.o")]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /missing\.o does not exist/);
});

test("netbpf load prints a verifier rejection as a readable report", (t) => {
  if (!kernelAvailable(t)) return;
  assert.ok(existsSync(rejectedObject), "the verifier fixture rejected.o is missing");
  const { status, stderr } = runCli(["load", rejectedObject, "--program", "null_value"]);
  assert.equal(status, 1);
  assert.match(stderr, /verifier rejected program "null_value"/);
  assert.match(stderr, /NULL/);
  assert.match(stderr, /rejected\.c:\d+/, "points at the source line");
  const json = runCli(["load", rejectedObject, "--program", "null_value", "--json"]);
  assert.equal(json.status, 1);
  const report = JSON.parse(json.stdout.trim());
  assert.equal(report.type, "verifier-rejection");
  assert.equal(report.program, "null_value");
  assert.equal(report.category, "null-pointer");
});

test("attachment plans follow the section name", () => {
  const program = (section: string) => {
    const kind = programKindOfSection(section)!;
    return { name: "p", section, type: kind.programType, expectedAttachType: kind.expectedAttachType, attachTarget: kind.attachTarget } as CollectionProgramSpec;
  };
  assert.deepEqual(planAttachment(program("tc"), { interface: "lo" }), { kind: "tc", direction: "ingress", interface: "lo" });
  assert.deepEqual(planAttachment(program("classifier"), { interface: "lo", direction: "egress" }), { kind: "tc", direction: "egress", interface: "lo" });
  assert.deepEqual(planAttachment(program("tcx/egress"), { interface: "lo", direction: "ingress" }), { kind: "tc", direction: "egress", interface: "lo" }, "the section wins");
  assert.throws(() => planAttachment(program("tc"), { interface: "lo", direction: "sideways" }), /--direction must be ingress or egress/);
  assert.deepEqual(planAttachment(program("xdp"), { interface: "lo", xdpMode: "generic" }), { kind: "xdp", interface: "lo", mode: "generic" });
  assert.throws(() => planAttachment(program("xdp"), {}), /attaches to XDP.*-i\/--interface/);
  assert.throws(() => planAttachment(program("xdp"), { interface: "lo", xdpMode: "turbo" }), /--xdp-mode must be native, generic or offload/);
  assert.equal(planAttachment(program("xdp/devmap"), {}).kind, "none");
  assert.deepEqual(planAttachment(program("tp/tcp/tcp_retransmit_skb"), {}), { kind: "tracepoint", category: "tcp", name: "tcp_retransmit_skb" });
  assert.deepEqual(planAttachment(program("raw_tp/sys_enter"), {}), { kind: "rawTracepoint", name: "sys_enter" });
  assert.throws(() => planAttachment(program("cgroup_skb/egress"), {}), /attaches to a cgroup.*--cgroup PATH/);
  assert.deepEqual(planAttachment(program("cgroup/connect4"), { cgroup: "/sys/fs/cgroup/x" }), { kind: "cgroup", cgroup: "/sys/fs/cgroup/x", attachType: AttachType.CgroupInet4Connect });
  assert.match((planAttachment(program("socket"), {}) as { reason: string }).reason, /socket/);
  assert.match((planAttachment(program("sk_lookup"), {}) as { reason: string }).reason, /does not attach SkLookup/);
});

test("netbpf load for people: status on standard error, dumps on standard output", (t) => {
  if (!kernelAvailable(t)) return;
  const { status, stdout, stderr } = runCli(["load", genObject, "--program", "scale", "--set", "multiplier=4", "--dump", "counters", "--dump", ".rodata", "--interval", "0.15", "--duration", "0.5"]);
  assert.equal(status, 0, stderr);
  assert.match(stderr, /^loaded .*gen\.o: 1 program\(s\), 5 map\(s\)$/m);
  assert.match(stderr, /not attached: scale \(section "socket"\)/);
  assert.match(stdout, /^counters: 5 entries\n  0: 0\n/m);
  assert.match(stdout, /^\.rodata: 1 entry\n  0: \{"multiplier":4,"bias":0,"watched_port":0\}$/m);
  const printed = stdout.match(/^counters: /gm)?.length ?? 0;
  assert.ok(printed >= 2, `--interval printed the map while running and at the end (${printed} times)`);
});
