/**
 * `netbpf audit rules check FILE`: validates an alert rules file the way
 * `netbpf audit record --rules FILE` does, and lists its rules; a bad file
 * gets every problem, one line each (`FILE:LINE: what is wrong`), and exit
 * status 2. Registered under `audit` by the audit command
 * (`registerAuditRulesCommand(audit)`).
 */
import type { Command } from "commander";
import { AlertRules, AlertRulesError, formatProblem, type AlertRule } from "../audit/alert-rules.js";
import { UsageError } from "../sys/errors.js";
import { renderTable, toJson, writeLine } from "./output.js";

/** The conditions of a rule, as one line. */
export function describeAlertRule(rule: AlertRule): string {
  const parts: string[] = [];
  if (rule.filter !== null) parts.push(`filter ${JSON.stringify(rule.filter.expression)}`);
  if (rule.direction !== null) parts.push(rule.direction);
  if (rule.process !== null) parts.push(`process ${rule.process.map((glob) => glob.pattern).join("|")}`);
  if (rule.executable !== null) parts.push(`executable ${rule.executable.map((glob) => glob.pattern).join("|")}`);
  if (rule.users !== null) parts.push(`uid ${rule.users.join("|")}`);
  if (rule.dnsName !== null) parts.push(`dns ${rule.dnsName.map((glob) => glob.pattern).join("|")}`);
  if (rule.firstSeen !== null) parts.push(`first-seen ${rule.firstSeen}`);
  if (rule.rate !== null) parts.push(`${rule.rate.count} in ${rule.rate.windowMilliseconds / 1000}s${rule.rate.per.length > 0 ? ` per ${rule.rate.per.join(",")}` : ""}`);
  return parts.length > 0 ? parts.join(", ") : "every record";
}

export function registerAuditRulesCommand(audit: Command): void {
  const rules = audit.command("rules").description("alert rules files: check one");
  rules
    .command("check")
    .description("validate an alert rules file (YAML or JSON) and list its rules; every problem is reported as FILE:LINE: what is wrong")
    .argument("<file>", "the rules file")
    .option("--json", "one JSON object per rule")
    .action((file: string, options: { json?: boolean }) => {
      let loaded: AlertRules;
      try {
        loaded = AlertRules.load(file);
      } catch (error) {
        if (!(error instanceof AlertRulesError) || error.problems.length === 1) throw error;
        // Every problem, in file order; the last line (the error path's) counts them.
        for (const problem of error.problems) process.stderr.write(`netbpf: audit rules check: ${formatProblem(problem)}\n`);
        throw new UsageError("audit rules check", `${file}: ${error.problems.length} problems`, "fix them and check again");
      }
      if (options.json) {
        for (const rule of loaded.rules) {
          writeLine(toJson({ name: rule.name, severity: rule.severity, line: rule.line, kinds: rule.kinds, conditions: describeAlertRule(rule), message: rule.message.text }));
        }
        return;
      }
      writeLine(`${file}: ${loaded.rules.length} rule${loaded.rules.length === 1 ? "" : "s"}, valid`);
      if (loaded.rules.length > 0) {
        writeLine(renderTable(["LINE", "NAME", "SEVERITY", "KINDS", "CONDITIONS"], loaded.rules.map((rule) => [rule.line, rule.name, rule.severity, rule.kinds.join(","), describeAlertRule(rule)])));
      }
    });
}
