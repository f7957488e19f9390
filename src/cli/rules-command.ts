import type { Command } from "commander";
import { describeRule, Firewall, type FirewallRuleStatus } from "../firewall/firewall.js";
import { parseDirection } from "../firewall/traffic-match.js";
import { UsageError } from "../sys/errors.js";
import { requireInterface } from "./block-command.js";
import { renderTable, toJson, writeLine } from "./output.js";

/** The firewalls a rules subcommand acts on: the named interface's, or every installed one. */
function firewalls(name: string | undefined): Firewall[] {
  if (name) {
    const match = Firewall.installed().filter((firewall) => firewall.interfaceName === name);
    if (match.length === 0) throw new UsageError("rules", `no firewall is installed on ${name}`, "add a rule with `netbpf block` or `netbpf allow`");
    return match;
  }
  return Firewall.installed();
}

function ruleRow(rule: FirewallRuleStatus): (string | number)[] {
  return [rule.interface, rule.id, rule.action, rule.direction, describeRule(rule) + (rule.comment ? `  # ${rule.comment}` : ""), rule.packets.toString(), rule.bytes.toString()];
}

export function registerRulesCommand(program: Command): void {
  const rules = program
    .command("rules")
    .description("list firewall rules with their packet and byte counters; delete, flush, set the default policy")
    .option("-i, --interface <name>", "only this interface")
    .option("--json", "one JSON object per rule (and per default policy)")
    .action((options: { interface?: string; json?: boolean }) => {
      const rows: (string | number)[][] = [];
      for (const firewall of firewalls(options.interface)) {
        const config = firewall.config();
        if (!config) continue;
        for (const rule of firewall.rules()) {
          if (options.json) writeLine(toJson(rule));
          else rows.push(ruleRow(rule));
        }
        const policy = firewall.policyCounter();
        if (options.json) {
          writeLine(toJson({ interface: firewall.interfaceName, id: 0, policy: config.policy, packets: policy.packets, bytes: policy.bytes }));
        } else {
          rows.push([firewall.interfaceName, "-", "policy", "", `ingress ${config.policy.ingress}, egress ${config.policy.egress}`, policy.packets.toString(), policy.bytes.toString()]);
        }
      }
      if (!options.json) {
        if (rows.length === 0) writeLine("no firewall rules installed");
        else writeLine(renderTable(["INTERFACE", "ID", "ACTION", "DIRECTION", "MATCH", "PACKETS", "BYTES"], rows));
      }
    });

  rules
    .command("delete")
    .description("delete a rule by its id")
    .argument("<id>", "rule id (from `netbpf rules`)")
    .option("-i, --interface <name>", "the interface (needed when several have firewalls)")
    .action((idText: string, options: { interface?: string }) => {
      options.interface ??= (rules.opts() as { interface?: string }).interface;
      const id = Number(idText);
      if (!/^\d+$/.test(idText) || id < 1) throw new UsageError("rules delete", `rule id must be a positive integer, got ${JSON.stringify(idText)}`);
      const candidates = firewalls(options.interface);
      if (candidates.length > 1) throw new UsageError("rules delete", `${candidates.length} interfaces have firewalls`, "name one with -i IFACE");
      if (candidates.length === 0) throw new UsageError("rules delete", "no firewall is installed");
      const rule = candidates[0]!.deleteRule(id);
      writeLine(`deleted rule ${rule.id} on ${candidates[0]!.interfaceName}: ${rule.action} ${describeRule(rule)}`);
    });

  rules
    .command("flush")
    .description("delete every rule (of one interface with -i); the default policy stays")
    .option("-i, --interface <name>", "only this interface")
    .action((options: { interface?: string }) => {
      options.interface ??= (rules.opts() as { interface?: string }).interface;
      let total = 0;
      for (const firewall of firewalls(options.interface)) total += firewall.flush();
      writeLine(`deleted ${total} rules`);
    });

  rules
    .command("policy")
    .description("what happens to IP packets no rule decides: allow (default) or drop (allow list mode)")
    .argument("<policy>", "allow or drop")
    .option("-i, --interface <name>", "the interface (required)")
    .option("-d, --direction <direction>", "ingress, egress or both", "ingress")
    .action((policyText: string, options: { interface?: string; direction?: string }) => {
      options.interface ??= (rules.opts() as { interface?: string }).interface;
      const name = requireInterface("rules policy", options.interface);
      const action = policyText === "drop" || policyText === "block" ? "block" : policyText === "allow" || policyText === "accept" ? "allow" : undefined;
      if (!action) throw new UsageError("rules policy", `policy must be allow or drop, got ${JSON.stringify(policyText)}`);
      const policy = Firewall.open(name).setPolicy(action, parseDirection(options.direction ?? "ingress"));
      writeLine(`policy on ${name}: ingress ${policy.ingress}, egress ${policy.egress}`);
    });
}
