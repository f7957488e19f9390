/**
 * The port monitor of the original description: a tc program, generated with
 * the Assembler, attached to `lo` ingress and egress, counting the packets and
 * bytes of one TCP port; a line per second.
 *
 *   node dist/examples/port-monitor.js [port] [--interface lo] [--seconds N]
 *
 * Stop with Ctrl-C; the programs are detached on every exit path.
 */
import { BpfMap, MapType, Program, ProgramType, u32, UsageError, NetbpfError } from "../src/index.js";
import { attachTcx } from "../src/link/tcx.js";
import { directionSlot, portCounterMapName, portCounterProgram, portCounterValue, type Direction } from "../src/programs/port-counter.js";

function parseArguments(argv: string[]) {
  let port = 8080;
  let iface = "lo";
  let seconds = Infinity;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--interface" || arg === "-i") iface = argv[++i] ?? "";
    else if (arg === "--seconds") seconds = Number(argv[++i]);
    else if (/^\d+$/.test(arg)) port = Number(arg);
    else throw new UsageError("port-monitor", `unknown argument "${arg}"`, "usage: port-monitor [port] [--interface lo] [--seconds N]");
  }
  if (!(seconds > 0)) throw new UsageError("port-monitor", "--seconds needs a positive number");
  return { port, iface, seconds };
}

function total(values: { packets: bigint; bytes: bigint }[] | undefined) {
  let packets = 0n;
  let bytes = 0n;
  for (const v of values ?? []) {
    packets += v.packets;
    bytes += v.bytes;
  }
  return { packets, bytes };
}

/** After this many seconds without a packet, the monitor repeats how to make traffic. */
const quietSeconds = 5;

/** What to run, in another terminal, to see the counters move. */
function trafficHint(port: number, iface: string): string {
  const host = iface === "lo" ? "127.0.0.1" : "an address on this interface";
  return `make some traffic in another terminal, e.g. \`curl -s http://${host}:${port}/\` ` +
    `(even with nothing listening, the refused connection is counted) or \`python3 -m http.server ${port}\` and then curl`;
}

async function main(): Promise<void> {
  const { port, iface, seconds } = parseArguments(process.argv.slice(2));
  using counts = BpfMap.create({ type: MapType.PercpuArray, key: u32, value: portCounterValue, maxEntries: 2, name: portCounterMapName });
  const directions: Direction[] = ["ingress", "egress"];
  const programs = directions.map((direction) =>
    Program.load({ type: ProgramType.SchedCls, instructions: portCounterProgram(port, direction), name: `port_${direction}` }, { maps: { [portCounterMapName]: counts } }));
  const links: { close(): void; mechanism?: string }[] = [];
  try {
    for (const [i, direction] of directions.entries()) links.push(attachTcx(programs[i]!, { interface: iface, direction }));
    const stop = new AbortController();
    // Output piped into `head` that has had enough (EPIPE): stop like Ctrl-C, detaching everything.
    process.stdout.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE") throw error;
      stop.abort();
    });
    process.stdout.write(`counting TCP port ${port} on ${iface} (${links[0]?.mechanism ?? "tc"}); Ctrl-C to stop\n`);
    process.stdout.write(`${trafficHint(port, iface)}\n`);
    process.once("SIGINT", () => stop.abort());
    process.once("SIGTERM", () => stop.abort());
    let previous = { ingress: { packets: 0n, bytes: 0n }, egress: { packets: 0n, bytes: 0n } };
    for (let tick = 1; tick <= seconds && !stop.signal.aborted; tick++) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        stop.signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
      });
      const now = { ingress: total(counts.getPerCpu(directionSlot.ingress)), egress: total(counts.getPerCpu(directionSlot.egress)) };
      const time = new Date().toISOString().slice(11, 19);
      process.stdout.write(
        `${time} port ${port}  in: ${now.ingress.packets - previous.ingress.packets} pkts ${now.ingress.bytes - previous.ingress.bytes} B` +
        `  out: ${now.egress.packets - previous.egress.packets} pkts ${now.egress.bytes - previous.egress.bytes} B` +
        `  (total in ${now.ingress.packets}/${now.ingress.bytes} B, out ${now.egress.packets}/${now.egress.bytes} B)\n`);
      previous = now;
      // Nothing at all after a few seconds: say again how to make some traffic.
      if (tick === quietSeconds && now.ingress.packets === 0n && now.egress.packets === 0n) {
        process.stdout.write(`no TCP port ${port} packets on ${iface} in ${quietSeconds} s: ${trafficHint(port, iface)}\n`);
      }
    }
  } finally {
    for (const link of links) link.close();
    for (const program of programs) program.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`port-monitor: ${error instanceof NetbpfError ? error.message : String(error)}\n`);
  process.exit(1);
});
