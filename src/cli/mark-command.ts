import type { Command } from "commander";
import { describeMark, Marker, type MarkRuleInput } from "../firewall/marker.js";
import { UsageError } from "../sys/errors.js";
import { requireInterface } from "./block-command.js";
import { renderTable, toJson, writeLine } from "./output.js";

export function registerMarkCommand(program: Command): void {
  const mark = program
    .command("mark")
    .description("set skb priority, fwmark or DSCP on an interface's egress traffic matching a filter (tc egress; persists)")
    .option("-i, --interface <name>", "the interface (required)")
    .option("--priority <class>", "skb priority: a tc class id like 1:2, or a number")
    .option("--fwmark <mark>", "skb mark (fwmark), e.g. 42 or 0x2a")
    .option("--dscp <codepoint>", "DSCP 0-63 or a name (ef, af41, cs1 …); ECN bits are kept, the IPv4 checksum updated")
    .option("-p, --protocol <protocol>", "only this protocol")
    .option("--port <port>", "only this source or destination port (or range)")
    .option("-f, --filter <expression>", "only traffic matching this pcap-filter expression")
    .option("--json", "print the new rule as JSON")
    .action((options: { interface?: string; priority?: string; fwmark?: string; dscp?: string; protocol?: string; port?: string; filter?: string; json?: boolean }) => {
      const name = requireInterface("mark", options.interface);
      const input: MarkRuleInput = {};
      if (options.priority !== undefined) input.priority = options.priority;
      if (options.fwmark !== undefined) input.fwmark = options.fwmark;
      if (options.dscp !== undefined) input.dscp = options.dscp;
      if (options.protocol !== undefined) input.protocol = options.protocol;
      if (options.port !== undefined) input.ports = options.port;
      if (options.filter !== undefined) input.expression = options.filter;
      const marker = Marker.open(name);
      const rule = marker.mark(input);
      if (options.json) writeLine(toJson({ interface: name, ...rule }));
      else writeLine(`mark ${rule.id} on ${name}: ${describeMark(rule)} (${marker.attachments().map((a) => `${a.hook}: ${a.mechanism}`).join(", ")})`);
    });

  mark
    .command("list")
    .description("mark rules with their packet and byte counters")
    .option("-i, --interface <name>", "only this interface")
    .option("--json", "one JSON object per rule")
    .action((options: { interface?: string; json?: boolean }) => {
      options.interface ??= (mark.opts() as { interface?: string }).interface;
      options.json ??= (mark.opts() as { json?: boolean }).json;
      const rows: string[][] = [];
      for (const marker of Marker.installed()) {
        if (options.interface && marker.interfaceName !== options.interface) continue;
        for (const rule of marker.rules()) {
          if (options.json) writeLine(toJson(rule));
          else rows.push([rule.interface, String(rule.id), describeMark(rule), rule.packets.toString(), rule.bytes.toString()]);
        }
      }
      if (!options.json) writeLine(rows.length ? renderTable(["INTERFACE", "ID", "MARK", "PACKETS", "BYTES"], rows) : "no marks installed");
    });

  mark
    .command("delete")
    .description("delete a mark rule by its id")
    .argument("<id>", "rule id (from `netbpf mark list`)")
    .option("-i, --interface <name>", "the interface (required)")
    .action((idText: string, options: { interface?: string }) => {
      options.interface ??= (mark.opts() as { interface?: string }).interface;
      const name = requireInterface("mark delete", options.interface);
      if (!/^\d+$/.test(idText)) throw new UsageError("mark delete", `rule id must be a positive integer, got ${JSON.stringify(idText)}`);
      const marker = Marker.installed().find((candidate) => candidate.interfaceName === name);
      if (!marker) throw new UsageError("mark delete", `no marks are installed on ${name}`);
      const rule = marker.deleteRule(Number(idText));
      writeLine(`deleted mark ${rule.id} on ${name}: ${describeMark(rule)}`);
    });
}
