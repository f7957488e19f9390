import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { Command, Help } from "commander";
import { commandTable } from "../../src/cli/command-table.js";
import { cliPath } from "../support/cli.js";

test("every line of the command table matches the command its module registers", async () => {
  const help = new Help();
  for (const entry of commandTable) {
    const program = new Command();
    const module = (await import(`../../src/cli/${entry.module}.js`)) as Record<string, unknown>;
    assert.equal(typeof module[entry.register], "function", `${entry.name}: ${entry.module} exports ${entry.register}`);
    (module[entry.register] as (program: Command) => void)(program);
    const command = program.commands.find((candidate) => candidate.name() === entry.name);
    assert.ok(command, `${entry.name}: its module registers no such command`);
    assert.equal(entry.description, command.description(), `${entry.name}: description`);
    assert.equal(entry.term, help.subcommandTerm(command), `${entry.name}: listing`);
  }
  const names = commandTable.map((entry) => entry.name);
  assert.equal(new Set(names).size, names.length, "names are unique");
});

test("netbpf --help lists every command without loading them; a command's help loads just that one", () => {
  const listing = spawnSync(process.execPath, [cliPath, "--help"], { encoding: "utf8" });
  assert.equal(listing.status, 0, listing.stderr);
  for (const entry of commandTable) assert.match(listing.stdout, new RegExp(`^  ${entry.term.replace(/[[\].]/g, "\\$&")}\\s`, "m"));
  assert.match(listing.stdout, /^ {2}help \[command\]/m);
  const one = spawnSync(process.execPath, [cliPath, "help", "capture"], { encoding: "utf8" });
  assert.equal(one.status, 0, one.stderr);
  assert.match(one.stdout, /Usage: netbpf capture \[options\] \[expression\.\.\.\]/);
  const typo = spawnSync(process.execPath, [cliPath, "captur"], { encoding: "utf8" });
  assert.equal(typo.status, 2, "a mistyped command is bad usage");
  assert.match(typo.stderr, /^netbpf: unknown command 'captur' \(Did you mean capture\?\)/);
});
