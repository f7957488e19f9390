import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parseAddressList, parseAddressPrefix } from "../firewall/address-prefix.js";
import { describeRule, Firewall, type FirewallRuleInput, type RuleAction } from "../firewall/firewall.js";
import { parseDirection } from "../firewall/traffic-match.js";
import { UsageError } from "../sys/errors.js";
import { toJson, writeLine } from "./output.js";

interface RuleOptions {
  interface?: string;
  direction?: string;
  protocol?: string;
  port?: string;
  filter?: string;
  file?: string;
  comment?: string;
  json?: boolean;
}

/** The interface option every control command needs: netbpf never picks one itself. */
export function requireInterface(operation: string, name: string | undefined): string {
  if (!name) throw new UsageError(operation, "no interface given", "name it with -i IFACE (netbpf never picks an interface by itself)");
  return name;
}

function readList(path: string): ReturnType<typeof parseAddressList> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError("read blocklist", `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const prefixes = parseAddressList(text, path);
  if (prefixes.length === 0) throw new UsageError("read blocklist", `${path} has no addresses`);
  return prefixes;
}

function registerRuleCommand(program: Command, action: RuleAction): void {
  const verb = action === "block" ? "block" : "allow";
  program
    .command(verb)
    .description(action === "block"
      ? "drop traffic on an interface: addresses/CIDRs, protocol, port range or a filter expression (XDP ingress, tc egress; persists)"
      : "let traffic through: exceptions to block rules, or the allow list of a drop-by-default interface")
    .argument("[address...]", "peer addresses or CIDR prefixes (IPv4 or IPv6): source at ingress, destination at egress")
    .option("-i, --interface <name>", "the interface (required)")
    .option("-d, --direction <direction>", "ingress, egress or both", "both")
    .option("-p, --protocol <protocol>", "tcp, udp, icmp, icmp6, sctp or a number")
    .option("--port <port>", "source or destination port, or range like 8000-8100")
    .option("-f, --filter <expression>", "a pcap-filter expression the packet must also match")
    .option("--file <list>", "a list of addresses/CIDRs, one per line (# comments), loaded in one batch as one rule")
    .option("--comment <text>", "a note shown by `netbpf rules`")
    .option("--json", "print the new rule as JSON")
    .action((addresses: string[], options: RuleOptions) => {
      const name = requireInterface(verb, options.interface);
      const direction = parseDirection(options.direction ?? "both");
      const prefixes = addresses.map((address) => parseAddressPrefix(address));
      if (options.file) prefixes.push(...readList(options.file));
      const input: FirewallRuleInput = { action, direction, addresses: prefixes };
      if (options.protocol !== undefined) input.protocol = options.protocol;
      if (options.port !== undefined) input.ports = options.port;
      if (options.filter !== undefined) input.expression = options.filter;
      const comment = options.comment ?? options.file;
      if (comment !== undefined) input.comment = comment;
      const firewall = Firewall.open(name);
      const rule = firewall.add(input);
      if (options.json) {
        writeLine(toJson({ interface: name, ...rule }));
        return;
      }
      const attachments = firewall.component.readManifest()?.attachments ?? [];
      const where = attachments.map((attachment) => `${attachment.hook}: ${attachment.mechanism}`).join(", ");
      writeLine(`rule ${rule.id} on ${name}: ${rule.action} ${describeRule(rule)} (${rule.direction}; ${where})`);
    });
}

export function registerBlockCommands(program: Command): void {
  registerRuleCommand(program, "block");
  registerRuleCommand(program, "allow");
}
