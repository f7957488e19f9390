/**
 * The netbpf commands, loaded on demand: `netbpf capture …` imports only
 * the capture command's module (and what it needs), and `netbpf --help`
 * none of them. To add a command, add a line here: the name, how the
 * listing shows it, its description, and its module's register function.
 * (test/cli/command-table.test.ts checks each line against the command the
 * module registers.)
 */
import { Help, type Command } from "commander";

export interface CommandEntry {
  /** The word that selects the command. */
  name: string;
  /** The command as `netbpf --help` lists it (name, [options], arguments). */
  term: string;
  description: string;
  /** Imports the module and returns its register function. */
  load(): Promise<(program: Command) => void>;
}

export const commandTable: readonly CommandEntry[] = [
  { name: "features", term: "features [options]", description: "probe what this kernel supports: program and map types, helpers, attach kinds (yes, no, or unknown with the reason)", load: async () => (await import("./features-command.js")).registerFeaturesCommand },
  { name: "filter", term: "filter [options] <expression...>", description: "check a pcap-filter(7) expression and show the eBPF program generated for it", load: async () => (await import("./filter-command.js")).registerFilterCommand },
  { name: "prog", term: "prog", description: "programs loaded in the kernel", load: async () => (await import("./object-commands.js")).registerObjectCommands },
  { name: "map", term: "map", description: "maps loaded in the kernel", load: async () => (await import("./object-commands.js")).registerObjectCommands },
  { name: "link", term: "link", description: "links in the kernel", load: async () => (await import("./object-commands.js")).registerObjectCommands },
  { name: "capture", term: "capture [options] [expression...]", description: "capture packets with a tc (tcx) program, like tcpdump; or filter a capture file (-r)", load: async () => (await import("./capture-command.js")).registerCaptureCommand },
  { name: "gen", term: "gen [options] <object>", description: "write a TypeScript module with typed maps, event codecs and a loader for a clang-built object", load: async () => (await import("./gen-command.js")).registerGenCommand },
  { name: "load", term: "load [options] <object>", description: "load a clang-built object, attach its programs where their sections say, stream events and dump maps", load: async () => (await import("./load-command.js")).registerLoadCommand },
  { name: "status", term: "status [options]", description: "show everything netbpf has installed on this machine (firewall, limits, marks, balancers): what, where it is attached, health", load: async () => (await import("./state-commands.js")).registerStateCommands },
  { name: "reset", term: "reset [options]", description: "remove everything netbpf installed (detach its programs, delete its pins) and nothing else", load: async () => (await import("./state-commands.js")).registerStateCommands },
  { name: "tcp", term: "tcp [options]", description: "follow TCP connections: one line per closed connection (tcplife), or every event with --events (tcpstates)", load: async () => (await import("./tcp-command.js")).registerTcpCommand },
  { name: "top", term: "top [options] [expression...]", description: "live traffic by local port, connection, process or remote host, counted in the kernel", load: async () => (await import("./top-command.js")).registerTopCommand },
  { name: "serve", term: "serve [options] [expression...]", description: "export traffic, TCP and load balancer metrics to Prometheus over HTTP", load: async () => (await import("./serve-command.js")).registerServeCommand },
  { name: "block", term: "block [options] [address...]", description: "drop traffic on an interface: addresses/CIDRs, protocol, port range or a filter expression (XDP ingress, tc egress; persists)", load: async () => (await import("./block-command.js")).registerBlockCommands },
  { name: "allow", term: "allow [options] [address...]", description: "let traffic through: exceptions to block rules, or the allow list of a drop-by-default interface", load: async () => (await import("./block-command.js")).registerBlockCommands },
  { name: "rules", term: "rules [options]", description: "list firewall rules with their packet and byte counters; delete, flush, set the default policy", load: async () => (await import("./rules-command.js")).registerRulesCommand },
  { name: "limit", term: "limit [options]", description: "per-source packet-rate and bit-rate limits (token buckets in an LRU map) at an interface's ingress; SYN-flood guard", load: async () => (await import("./limit-command.js")).registerLimitCommand },
  { name: "mark", term: "mark [options]", description: "set skb priority, fwmark or DSCP on an interface's egress traffic matching a filter (tc egress; persists)", load: async () => (await import("./mark-command.js")).registerMarkCommand },
  { name: "lb", term: "lb [options] [service]", description: "an L4 load balancer in the kernel: spread a virtual service (VIP:PORT) over backends with Maglev hashing, NAT or DSR", load: async () => (await import("./lb-command.js")).registerLbCommand },
  { name: "audit", term: "audit", description: "a durable, hash-chained record of who talked to whom (TCP, UDP, DNS, drops) in SQLite: record, query, summary, verify", load: async () => (await import("./audit-command.js")).registerAuditCommand },
];

/**
 * Registers what a command line needs: the module of the command it names
 * (also after `help`), or, for anything else (--help, --version, a typo),
 * a cheap entry per command that commander lists and suggests from.
 */
export async function registerCommands(program: Command, argv: readonly string[]): Promise<void> {
  const words = argv.slice(2);
  const named = words[0] === "help" ? words[1] : words[0];
  const entry = commandTable.find((candidate) => candidate.name === named);
  if (entry !== undefined) {
    (await entry.load())(program);
    return;
  }
  const terms = new Map(commandTable.map((candidate) => [candidate.name, candidate.term]));
  const standard = new Help();
  program.configureHelp({ subcommandTerm: (command) => terms.get(command.name()) ?? standard.subcommandTerm(command) });
  for (const candidate of commandTable) program.command(candidate.name).description(candidate.description);
}
