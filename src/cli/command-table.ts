/**
 * The netbpf commands. To add a command, add a line here: the name, how the
 * listing shows it, its description, and the module (in src/cli) and the
 * function in it that registers the command. The published `bin` runs one
 * bundle per module (scripts/bundle-cli.ts builds them from this table), so
 * `netbpf capture …` loads only the capture command's code, and
 * `netbpf --help` none of them. (test/cli/command-table.test.ts checks each
 * line against the command the module registers.)
 *
 * Plain data: the launcher (src/cli/netbpf.ts) reads it before anything else loads.
 */

export interface CommandEntry {
  /** The word that selects the command. */
  name: string;
  /** The command as `netbpf --help` lists it (name, [options], arguments). */
  term: string;
  description: string;
  /** The module that registers it, in src/cli, without extension. */
  module: string;
  /** The function of `module` that registers it on the program. */
  register: string;
}

export const commandTable: readonly CommandEntry[] = [
  { name: "features", term: "features [options]", description: "probe what this kernel supports: program and map types, helpers, attach kinds (yes, no, or unknown with the reason)", module: "features-command", register: "registerFeaturesCommand" },
  { name: "filter", term: "filter [options] <expression...>", description: "check a pcap-filter(7) expression and show the eBPF program generated for it", module: "filter-command", register: "registerFilterCommand" },
  { name: "prog", term: "prog", description: "programs loaded in the kernel", module: "object-commands", register: "registerObjectCommands" },
  { name: "map", term: "map", description: "maps loaded in the kernel", module: "object-commands", register: "registerObjectCommands" },
  { name: "link", term: "link", description: "links in the kernel", module: "object-commands", register: "registerObjectCommands" },
  { name: "capture", term: "capture [options] [expression...]", description: "capture packets with a tc (tcx) program, like tcpdump; or filter a capture file (-r)", module: "capture-command", register: "registerCaptureCommand" },
  { name: "gen", term: "gen [options] <object>", description: "write a TypeScript module with typed maps, event codecs and a loader for a clang-built object", module: "gen-command", register: "registerGenCommand" },
  { name: "load", term: "load [options] <object>", description: "load a clang-built object, attach its programs where their sections say, stream events and dump maps", module: "load-command", register: "registerLoadCommand" },
  { name: "status", term: "status [options]", description: "show everything netbpf has installed on this machine (firewall, limits, marks, balancers): what, where it is attached, health", module: "state-commands", register: "registerStateCommands" },
  { name: "reset", term: "reset [options]", description: "remove everything netbpf installed (detach its programs, delete its pins) and nothing else", module: "state-commands", register: "registerStateCommands" },
  { name: "tcp", term: "tcp [options]", description: "follow TCP connections: one line per closed connection (tcplife), or every event with --events (tcpstates)", module: "tcp-command", register: "registerTcpCommand" },
  { name: "top", term: "top [options] [expression...]", description: "live traffic by local port, connection, process or remote host, counted in the kernel", module: "top-command", register: "registerTopCommand" },
  { name: "serve", term: "serve [options] [expression...]", description: "export traffic, TCP and load balancer metrics to Prometheus over HTTP", module: "serve-command", register: "registerServeCommand" },
  { name: "block", term: "block [options] [address...]", description: "drop traffic on an interface: addresses/CIDRs, protocol, port range or a filter expression (XDP ingress, tc egress; persists)", module: "block-command", register: "registerBlockCommands" },
  { name: "allow", term: "allow [options] [address...]", description: "let traffic through: exceptions to block rules, or the allow list of a drop-by-default interface", module: "block-command", register: "registerBlockCommands" },
  { name: "rules", term: "rules [options]", description: "list firewall rules with their packet and byte counters; delete, flush, set the default policy", module: "rules-command", register: "registerRulesCommand" },
  { name: "limit", term: "limit [options]", description: "per-source packet-rate and bit-rate limits (token buckets in an LRU map) at an interface's ingress; SYN-flood guard", module: "limit-command", register: "registerLimitCommand" },
  { name: "mark", term: "mark [options]", description: "set skb priority, fwmark or DSCP on an interface's egress traffic matching a filter (tc egress; persists)", module: "mark-command", register: "registerMarkCommand" },
  { name: "lb", term: "lb [options] [service]", description: "an L4 load balancer in the kernel: spread a virtual service (VIP:PORT) over backends with Maglev hashing, NAT or DSR", module: "lb-command", register: "registerLbCommand" },
  { name: "audit", term: "audit", description: "a durable, hash-chained record of who talked to whom (TCP, UDP, DNS, drops) in SQLite: record, query, summary, verify", module: "audit-command", register: "registerAuditCommand" },
];

/** The command a command line names: its first word, or the word after `help` (`netbpf help capture`); undefined when there is none. */
export function commandWord(argv: readonly string[]): string | undefined {
  const words = argv.slice(2);
  return words[0] === "help" ? words[1] : words[0];
}

/** The entry of the command a command line names, if it names one. */
export function commandEntryFor(argv: readonly string[]): CommandEntry | undefined {
  const named = commandWord(argv);
  return commandTable.find((candidate) => candidate.name === named);
}
