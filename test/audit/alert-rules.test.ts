import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { AlertRules, AlertRulesError } from "../../src/audit/alert-rules.js";
import { UsageError } from "../../src/sys/errors.js";

const good = `# rules for the tests
rules:
  - name: ssh-out
    severity: high
    message: "{process.command} ({process.pid}) opened SSH to {flow.remoteAddress}:{flow.remotePort}"
    filter: tcp dst port 22
    direction: outbound
  - name: root-listener
    severity: medium
    message: "new listener on {flow.localPort} by {process.user}"
    firstSeen: listener
    user: [root, 1000]
  - name: many-dns
    severity: low
    message: "{count} lookups of *.example in {window}"
    kinds: dns
    dns: "*.example"
    rate: { count: 5, window: 1m, per: process.command }
  - name: disabled
    severity: info
    message: off
    enabled: false
`;

test("a valid YAML file gives its rules, with their lines", () => {
  const rules = AlertRules.parse(good, "good.yaml");
  assert.deepEqual(rules.rules.map((rule) => [rule.name, rule.line]), [["ssh-out", 3], ["root-listener", 8], ["many-dns", 13]]);
  const [ssh, listener, dns] = rules.rules;
  assert.equal(ssh!.filter!.expression, "tcp dst port 22");
  assert.deepEqual(listener!.users, [0, 1000]);
  assert.deepEqual(listener!.kinds, ["listen"]);
  assert.deepEqual(dns!.rate, { count: 5, windowMilliseconds: 60_000, per: ["process.command"] });
  assert.deepEqual(dns!.kinds, ["dns"]);
});

test("JSON rule files are read too, with line numbers", () => {
  const json = `{
  "rules": [
    { "name": "a", "severity": "low", "message": "m", "filter": "port 53" },
    { "name": "b", "severity": "urgent", "message": "m" }
  ]
}`;
  assert.throws(() => AlertRules.parse(json, "rules.json"), (error: unknown) => {
    assert.ok(error instanceof AlertRulesError);
    assert.equal(error.message, `load alert rules: rules.json:4: rule "b": severity "urgent" is not one of info, low, medium, high, critical`);
    return true;
  });
  assert.equal(AlertRules.fromObject({ rules: [{ name: "x", severity: "info", message: "{kind}" }] }).rules.length, 1);
});

/** Each bad file, and the one-line error it must give (first problem). */
const badFiles: [string, string, string][] = [
  ["unknown field", "rules:\n  - name: a\n    severity: low\n    message: m\n    proces: ssh\n", `bad.yaml:5: rule "a": unknown field "proces" (did you mean "process"?)`],
  ["bad expression", "rules:\n  - name: a\n    severity: low\n    message: m\n    filter: tcp dst prot 22\n", `bad.yaml:5: rule "a": filter:`],
  ["bad severity", "rules:\n  - name: a\n    severity: severe\n    message: m\n", `bad.yaml:3: rule "a": severity "severe" is not one of`],
  ["bad duration", "rules:\n  - name: a\n    severity: low\n    message: m\n    rate:\n      count: 3\n      window: 5 minutes\n", `bad.yaml:7: rule "a": rate: window "5 minutes" is not a duration`],
  ["zero duration", "rules:\n  - name: a\n    severity: low\n    message: m\n    rate: { count: 3, window: 0s }\n", `bad.yaml:5: rule "a": rate: window "0s" must be longer than zero`],
  ["unknown template field", "rules:\n  - name: a\n    severity: low\n    message: \"{process.comand} did it\"\n", `bad.yaml:4: rule "a": message: unknown field {process.comand} (did you mean "process.command"?)`],
  ["missing message", "rules:\n  - name: a\n    severity: low\n", `bad.yaml:2: rule "a": missing field message`],
  ["unknown user", "rules:\n  - name: a\n    severity: low\n    message: m\n    user: no-such-user-here\n", `bad.yaml:5: rule "a": user: no account named "no-such-user-here"`],
  ["bad direction", "rules:\n  - name: a\n    severity: low\n    message: m\n    direction: out\n", `bad.yaml:5: rule "a": direction "out" is not one of outbound, inbound`],
  ["bad kind", "rules:\n  - name: a\n    severity: low\n    message: m\n    kinds: [connection, alert]\n", `bad.yaml:5: rule "a": kinds: a rule cannot look at alert records`],
  ["duplicate name", "rules:\n  - name: a\n    severity: low\n    message: m\n  - name: a\n    severity: low\n    message: m\n", `bad.yaml:5: rule "a": the name is already used by the rule on line 2`],
  ["bad rate per", "rules:\n  - name: a\n    severity: low\n    message: m\n    rate: { count: 2, window: 10s, per: [flow.remote] }\n", `bad.yaml:5: rule "a": rate: per: unknown field "flow.remote"`],
  ["not YAML", "rules:\n  - name: a\n   severity: [low\n", `bad.yaml:3: not valid YAML or JSON:`],
  ["no rules", "# nothing\n", `bad.yaml:1: the file holds no rules`],
  ["unknown top-level field", "rule:\n  - name: a\n", `bad.yaml:1: unknown top-level field "rule"`],
  ["bad glob", "rules:\n  - name: a\n    severity: low\n    message: m\n    process: \"ssh[\"\n", `bad.yaml:5: rule "a": process: pattern "ssh[" has a [ without ]`],
];

for (const [what, text, expected] of badFiles) {
  test(`bad rule file (${what}) gives one line naming file and line`, () => {
    assert.throws(() => AlertRules.parse(text, "bad.yaml"), (error: unknown) => {
      assert.ok(error instanceof AlertRulesError && error instanceof UsageError);
      assert.ok(!error.message.includes("\n"), `one line: ${JSON.stringify(error.message)}`);
      assert.ok(error.message.startsWith(`load alert rules: ${expected}`), `${error.message}\n  should start with\nload alert rules: ${expected}`);
      return true;
    });
  });
}

test("every problem of a file is collected, in order", () => {
  const text = "rules:\n  - name: a\n    severity: nope\n    message: m\n  - name: b\n    severity: low\n    message: m\n    filter: \"port\"\n";
  assert.throws(() => AlertRules.parse(text, "two.yaml"), (error: unknown) => {
    assert.ok(error instanceof AlertRulesError);
    assert.deepEqual(error.problems.map((problem) => problem.line), [3, 8]);
    assert.match(error.message, /\(and 1 more problem: see netbpf audit rules check\)$/);
    assert.match(error.problems[1]!.message, /^rule "b": filter: .*port »«/);
    return true;
  });
});

test("a missing file is a usage error naming it", () => {
  const directory = mkdtempSync(join(tmpdir(), "netbpf-rules-"));
  try {
    assert.throws(() => AlertRules.load(join(directory, "missing.yaml")), /load alert rules: cannot read .*missing\.yaml: ENOENT/);
    writeFileSync(join(directory, "ok.yml"), good);
    assert.equal(AlertRules.load(join(directory, "ok.yml")).rules.length, 3);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
