import type { Command } from "commander";
import { probeAll, type Support } from "../features/features.js";
import { renderTable, toJson, writeLine } from "./output.js";

export function registerFeaturesCommand(program: Command): void {
  program
    .command("features")
    .description("probe what this kernel supports: program and map types, helpers, attach kinds (yes, no, or unknown with the reason)")
    .option("--json", "print one JSON object")
    .action((options: { json?: boolean }) => {
      const report = probeAll();
      if (options.json) {
        writeLine(toJson(report));
        return;
      }
      // An unknown answer is marked with a number that points at its reason below the tables.
      const reasons: string[] = [];
      const mark = (support: Support, place: string): string => {
        if (support !== "unknown") return support;
        const reason = report.unknown[place];
        if (reason === undefined) return support;
        reasons.push(reason);
        return `unknown (${reasons.length})`;
      };
      writeLine(`instruction set: ${report.instructionSet}${report.unknown.instructionSet ? ` or newer: ${mark("unknown", "instructionSet")}` : ""}`);
      writeLine(`may_goto (live protochain filters): ${mark(report.mayGoto, "mayGoto")}`);
      writeLine(`kernel BTF (/sys/kernel/btf/vmlinux): ${report.kernelBtf}`);
      writeLine("");
      writeLine(renderTable(["attach kind", "supported"], Object.entries(report.attach).map(([k, v]) => [k, mark(v, `attach.${k}`)])));
      writeLine("");
      writeLine(renderTable(["program type", "supported"], Object.entries(report.programTypes).map(([k, v]) => [k, mark(v, `programTypes.${k}`)])));
      writeLine("");
      writeLine(renderTable(["map type", "supported"], Object.entries(report.mapTypes).map(([k, v]) => [k, mark(v, `mapTypes.${k}`)])));
      writeLine("");
      const types = Object.keys(report.helpers);
      const helpers = Object.keys(report.helpers[types[0]!] ?? {});
      writeLine(renderTable(["helper", ...types], helpers.map((h) => [h, ...types.map((t) => mark(report.helpers[t]![h]!, `helpers.${t}.${h}`))])));
      if (reasons.length > 0) {
        writeLine("");
        writeLine("unknown: the kernel's answer did not tell whether the feature is supported");
        reasons.forEach((reason, index) => writeLine(`  (${index + 1}) ${reason}`));
      }
    });
}
