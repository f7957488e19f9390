import { test } from "node:test";
import assert from "node:assert/strict";
import { BpfMap } from "../../src/core/map.js";
import { Program } from "../../src/core/program.js";
import { MapType, ProgramType } from "../../src/sys/bpf-constants.js";
import { u32 } from "../../src/core/codec.js";
import { runCli } from "../support/cli.js";

test("netbpf map list/show/dump see a map this process created", () => {
  using map = BpfMap.create({ type: MapType.Hash, key: u32, value: u32, maxEntries: 8, name: "cli_test_map" });
  map.put(7, 0x01020304);
  const id = map.id;
  const list = runCli(["map", "list", "--json"]);
  assert.equal(list.status, 0, list.stderr);
  const rows = list.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const row = rows.find((r) => r.id === id);
  assert.deepEqual({ name: row.name, type: row.type, keySize: row.keySize, valueSize: row.valueSize, maxEntries: row.maxEntries }, { name: "cli_test_map", type: "Hash", keySize: 4, valueSize: 4, maxEntries: 8 });
  const dump = runCli(["map", "dump", String(id), "--json"]);
  assert.equal(dump.status, 0, dump.stderr);
  assert.deepEqual(JSON.parse(dump.stdout.trim()), { key: "07000000", value: "04030201" });
  const show = runCli(["map", "show", String(id)]);
  assert.match(show.stdout, /name\s+cli_test_map/);
});

test("netbpf prog list/show see a loaded program", () => {
  using program = Program.load({ type: ProgramType.SocketFilter, instructions: Buffer.from("b7000000000000009500000000000000", "hex"), name: "cli_test_prog" });
  const id = program.id;
  const show = runCli(["prog", "show", String(id), "--json"]);
  assert.equal(show.status, 0, show.stderr);
  const info = JSON.parse(show.stdout);
  assert.equal(info.name, "cli_test_prog");
  assert.equal(info.type, "SocketFilter");
  const list = runCli(["prog", "list"]);
  assert.match(list.stdout, new RegExp(`^${id}\\s+SocketFilter\\s+cli_test_prog`, "m"));
});

test("object commands reject bad ids clearly", () => {
  const bad = runCli(["prog", "show", "abc"]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /"abc" is not an id/);
  const missing = runCli(["map", "dump", "2147483647"]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no map with id 2147483647/);
  const links = runCli(["link", "list", "--json"]);
  assert.equal(links.status, 0, links.stderr);
});
