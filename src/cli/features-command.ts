import type { Command } from "commander";
import { probeAll } from "../features/features.js";
import { renderTable, toJson, writeLine } from "./output.js";

function mark(supported: boolean): string {
  return supported ? "yes" : "no";
}

export function registerFeaturesCommand(program: Command): void {
  program
    .command("features")
    .description("probe what this kernel supports: program and map types, helpers, attach kinds")
    .option("--json", "print one JSON object")
    .action((options: { json?: boolean }) => {
      const report = probeAll();
      if (options.json) {
        writeLine(toJson(report));
        return;
      }
      writeLine(`instruction set: ${report.instructionSet}`);
      writeLine(`kernel BTF (/sys/kernel/btf/vmlinux): ${mark(report.kernelBtf)}`);
      writeLine("");
      writeLine(renderTable(["attach kind", "supported"], Object.entries(report.attach).map(([k, v]) => [k, mark(v)])));
      writeLine("");
      writeLine(renderTable(["program type", "supported"], Object.entries(report.programTypes).map(([k, v]) => [k, mark(v)])));
      writeLine("");
      writeLine(renderTable(["map type", "supported"], Object.entries(report.mapTypes).map(([k, v]) => [k, mark(v)])));
      writeLine("");
      const types = Object.keys(report.helpers);
      const helpers = Object.keys(report.helpers[types[0]!] ?? {});
      writeLine(renderTable(["helper", ...types], helpers.map((h) => [h, ...types.map((t) => mark(report.helpers[t]![h]!))])));
    });
}
