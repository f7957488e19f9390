import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

const cli = new URL("../../src/cli/netbpf.js", import.meta.url).pathname;

function run(...args: string[]) {
  return spawnSync(process.execPath, [cli, "filter", ...args], { encoding: "utf8" });
}

test("netbpf filter -d prints the program as annotated assembly", () => {
  const result = run("-d", "--context", "xdp", "tcp", "port", "80");
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /; pkt\[0xc:2\] == 0x800/);
  assert.match(result.stdout, /if w\d != 0x8 goto reject\d/, "the EtherType compared with a byte-swapped constant");
  assert.match(result.stdout, /goto accept\d/);
  assert.match(result.stdout, /^\(00\) r2 = \*\(u32 \*\)\(r1 \+ 0x0\)$/m);
  const skb = run("-d", "udp");
  assert.match(skb.stdout, /r0 = \*\(u8 \*\)skb\[0x17\]/);
});

test("netbpf filter reports a bad expression with its position and exits 2", () => {
  const result = run("tcp", "port", "99999");
  assert.equal(result.status, 2);
  assert.match(result.stderr, /illegal port number 99999 > 65535 at offset 9/);
  assert.match(result.stderr, /\n  tcp port 99999\n {11}\^{5}\n/);
  const linkType = run("--link-type", "sll", "vlan");
  assert.equal(linkType.status, 2);
  assert.match(linkType.stderr, /no VLAN support/);
});

test("netbpf filter --json summarises the program", () => {
  const result = run("--json", "--link-type", "raw", "ip6", "and", "udp");
  assert.equal(result.status, 0, result.stderr);
  const summary = JSON.parse(result.stdout) as { linkType: number; instructions: number; tests: number };
  assert.equal(summary.linkType, 101);
  assert.ok(summary.instructions > 5 && summary.tests >= 2);
});
