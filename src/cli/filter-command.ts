import type { Command } from "commander";
import { compileFilter } from "../filter/compile-filter.js";
import { formatFilterProgram } from "../filter/format-filter-program.js";
import { generateFilterProgram, type FilterContext } from "../filter/generate-filter-program.js";
import { formatPredicate } from "../filter/predicate.js";
import { UsageError } from "../sys/errors.js";
import { toJson, writeLine } from "./output.js";

const linkTypeNames: Record<string, number> = {
  ethernet: 1, en10mb: 1, ether: 1, sll: 113, linux_sll: 113, sll2: 276, linux_sll2: 276, raw: 101, ipv4: 228, ipv6: 229,
};

/** Reads a link type given by name (ethernet, sll, sll2, raw, ipv4, ipv6) or LINKTYPE_ number. */
export function parseLinkType(text: string): number {
  const byName = linkTypeNames[text.toLowerCase()];
  if (byName !== undefined) return byName;
  if (/^\d+$/.test(text)) return Number(text);
  throw new UsageError("filter", `unknown link type '${text}'`, `one of ${Object.keys(linkTypeNames).join(", ")} or a LINKTYPE_ number`);
}

interface FilterCommandOptions {
  dump?: boolean;
  context: string;
  linkType: string;
  predicate?: boolean;
  json?: boolean;
}

export function registerFilterCommand(program: Command): void {
  program
    .command("filter")
    .description("check a pcap-filter(7) expression and show the eBPF program generated for it")
    .argument("<expression...>", "filter expression (several arguments are joined with spaces, like tcpdump)")
    .option("-d, --dump", "print the generated program as annotated assembly (like tcpdump -d)")
    .option("--context <context>", "skb (socket filter, tc) or xdp", "skb")
    .option("--link-type <type>", "ethernet, sll, sll2, raw, ipv4, ipv6 or a LINKTYPE_ number", "ethernet")
    .option("--predicate", "print the compiled tests before code generation")
    .option("--json", "print one JSON object")
    .action((words: string[], options: FilterCommandOptions) => {
      const expression = words.join(" ");
      const context = options.context as FilterContext;
      if (context !== "skb" && context !== "xdp") throw new UsageError("filter", `unknown context '${options.context}'`, "skb or xdp");
      const filter = compileFilter(expression, { linkType: parseLinkType(options.linkType), packetMetadata: true });
      const generated = generateFilterProgram(filter, { context });
      if (options.json) {
        writeLine(toJson({ expression, linkType: filter.linkType, context, instructions: generated.instructions.length, tests: generated.annotations.size, predicate: formatPredicate(filter.predicate) }));
        return;
      }
      if (options.predicate) writeLine(formatPredicate(filter.predicate));
      if (options.dump) writeLine(formatFilterProgram(generated));
      if (!options.predicate && !options.dump) writeLine(`${context} program: ${generated.instructions.length} instructions, ${generated.annotations.size} tests`);
    });
}
