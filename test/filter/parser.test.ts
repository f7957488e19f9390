import { test } from "node:test";
import assert from "node:assert/strict";
import type { FilterNode } from "../../src/filter/ast.js";
import { compileFilter } from "../../src/filter/compile-filter.js";
import { FilterSyntaxError } from "../../src/filter/filter-syntax-error.js";
import { tokenize } from "../../src/filter/lexer.js";
import { parseFilter } from "../../src/filter/parser.js";
import { UsageError } from "../../src/sys/errors.js";

/** A compact rendering of the AST: qualifiers and ids, and/or/not structure. */
function show(node: FilterNode | undefined): string {
  if (!node) return "<all>";
  switch (node.kind) {
    case "and":
    case "or":
      return `(${show(node.left)} ${node.kind} ${show(node.right)})`;
    case "not":
      return `not ${show(node.operand)}`;
    case "primitive": {
      const q = node.qualifiers;
      const id = node.id.kind === "number" ? String(node.id.value) : node.id.text;
      return [q.protocol, q.direction, q.type, id].filter((part) => part !== undefined).join(" ");
    }
    case "protocol":
      return node.protocol;
    default:
      return node.kind;
  }
}

test("bare ids inherit the qualifiers before them, as in libpcap", () => {
  assert.equal(show(parseFilter("host a or b")), "(host a or host b)");
  assert.equal(show(parseFilter("not tcp port 80 and 22")), "(not tcp port 80 and tcp port 22)");
  assert.equal(show(parseFilter("tcp dst port ftp or ftp-data or domain")), "((tcp dst port ftp or tcp dst port ftp-data) or tcp dst port domain)");
  assert.equal(show(parseFilter("host vs and not ace")), "(host vs and not host ace)");
  assert.equal(show(parseFilter("host a and (b or c)")), "(host a and (host b or host c))");
  assert.equal(show(parseFilter("src or dst host a")), "src or dst host a");
  assert.equal(show(parseFilter("ip src and dst 10.0.0.1")), "ip src and dst 10.0.0.1");
  assert.equal(show(parseFilter("tcp port 80 and (host h) or 81")), "((tcp port 80 and host h) or tcp port 81)");
});

test("and/or have equal precedence and associate left; not binds tightest", () => {
  assert.equal(show(parseFilter("tcp or udp and icmp")), "((tcp or udp) and icmp)");
  assert.equal(show(parseFilter("! tcp && ! udp || arp")), "((not tcp and not udp) or arp)");
  assert.equal(show(parseFilter("not (tcp or udp)")), "not (tcp or udp)");
  assert.equal(parseFilter(""), undefined);
  assert.equal(parseFilter("   "), undefined);
});

test("the scanner reads numbers, addresses and names like libpcap's", () => {
  const kinds = (text: string) => tokenize(text).slice(0, -1).map((t) => `${t.kind}:${t.value ?? t.text}`);
  assert.deepEqual(kinds("0x50 0120 80"), ["number:80", "number:80", "number:80"]);
  assert.deepEqual(kinds("10.1 10.0.0.1 ::1 2001:db8::/32"), ["ipv4:10.1", "ipv4:10.0.0.1", "ipv6:::1", "ipv6:2001:db8::", "operator:/", "number:32"]);
  assert.deepEqual(kinds("a:b:c:d:e:f 00-11-22-33-44-55 0011.2233.4455")[0], "mac:a:b:c:d:e:f");
  assert.deepEqual(kinds("ether[12:2]"), ["keyword:link", "operator:[", "number:12", "operator::", "number:2", "operator:]"]);
  assert.deepEqual(kinds("tcp-syn|tcp-fin icmptype"), ["number:2", "operator:|", "number:1", "number:0"]);
  assert.deepEqual(kinds("ftp-data \\tcp len-1"), ["name:ftp-data", "name:tcp", "name:len-1"]);
  assert.deepEqual(kinds("&& || ! == != <= >= << >>"), ["keyword:and", "keyword:or", "keyword:not", "operator:=", "operator:!=", "operator:<=", "operator:>=", "operator:<<", "operator:>>"]);
});

function syntaxError(expression: string): FilterSyntaxError {
  try {
    compileFilter(expression, { linkType: 1 });
  } catch (error) {
    assert.ok(error instanceof FilterSyntaxError, `${expression}: ${String(error)}`);
    return error;
  }
  assert.fail(`${expression} compiled`);
}

test("errors say where and what was expected, like a compiler", () => {
  const port = syntaxError("port 99999");
  assert.equal(port.position, 5);
  assert.match(port.message, /illegal port number 99999 > 65535 at offset 5; expected a port from 0 to 65535/);
  assert.equal(port.caret, "  port 99999\n       ^^^^^");
  assert.ok(port instanceof UsageError);

  const bracket = syntaxError("tcp[");
  assert.equal(bracket.position, 4);
  assert.match(bracket.message, /unexpected end of expression; expected a number/);

  const bare = syntaxError("tcp or 80");
  assert.equal(bare.position, 7);
  assert.match(bare.detail, /no qualifier to inherit/);

  assert.equal(syntaxError("tcp port 80 80").position, 12);
  assert.equal(syntaxError("host 10.0.0.1 or").position, 16);
  assert.match(syntaxError("ip[0:3] = 1").detail, /data size must be 1, 2, or 4/);
  assert.match(syntaxError("vlan 5000").detail, /VLAN tag 5000 greater than maximum 4095/);
  assert.match(syntaxError("net 10.0.0.1/8").detail, /non-network bits/);
  assert.match(syntaxError("ip and arp").detail, /rejects all packets/);
  assert.match(syntaxError("tcp[0] / 0 = 1").detail, /division by zero/);
  assert.match(syntaxError("host nosuchhost-netbpf-test").detail, /unknown host/);
  assert.match(syntaxError("a $ b").detail, /illegal character/);
  assert.match(syntaxError("(".repeat(300) + "tcp" + ")".repeat(300)).detail, /nested deeper/);
});

test("link types: what only makes sense on some of them is refused on the others", () => {
  assert.throws(() => compileFilter("vlan", { linkType: 113 }), /no VLAN support for Linux cooked/);
  assert.throws(() => compileFilter("ether host 1:2:3:4:5:6", { linkType: 101 }), /Ethernet/);
  assert.throws(() => compileFilter("inbound", { linkType: 1 }), /inbound\/outbound not supported on Ethernet/);
  assert.doesNotThrow(() => compileFilter("inbound", { linkType: 1, packetMetadata: true }));
  assert.throws(() => compileFilter("tcp", { linkType: 147 }), /link type 147 is not supported/);
});

test("the arithmetic quirk: libpcap drops the checks of a right-hand packet access unless strict", () => {
  const nonTcp = new Uint8Array(60);
  nonTcp[12] = 0x86;
  nonTcp[13] = 0xdd;
  assert.equal(compileFilter("1 - tcp[12] > 0", { linkType: 1 }).matches(nonTcp), true);
  assert.equal(compileFilter("1 - tcp[12] > 0", { linkType: 1, arithmeticChecks: "strict" }).matches(nonTcp), false);
});

/** Deterministic PRNG (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("fuzz: mutated expressions compile or fail with a FilterSyntaxError, quickly", { timeout: 120_000 }, async () => {
  const { differentialExpressions } = await import("./filter-expressions.js");
  const pieces = ["(", ")", "[", "]", ":", "and", "or", "not", "!", "&&", "||", "host", "port", "net", "tcp", "ip6", "vlan", "mpls",
    "geneve", "80", "0x", "10.0.0.1", "::1", "/", "-", "+", "*", "%", "<<", ">>", "=", "!=", "<", ">", "\\", "ether", "src", "dst",
    "mask", "portrange", "1-2", "len", "protochain", "proto", "pppoes", "broadcast", "icmp[icmptype]", "tcpflags", " ", "99999999999", "0:"];
  const next = random(20261125);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  let compiled = 0;
  let rejected = 0;
  for (let i = 0; i < 4000; i++) {
    let text = pick(differentialExpressions);
    const mutations = 1 + Math.floor(next() * 4);
    for (let m = 0; m < mutations; m++) {
      const at = Math.floor(next() * (text.length + 1));
      const choice = next();
      if (choice < 0.35) text = text.slice(0, at) + pick(pieces) + text.slice(at);
      else if (choice < 0.6) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(next() * 4));
      else if (choice < 0.8) text = text.slice(0, at) + String.fromCharCode(Math.floor(next() * 128)) + text.slice(at + 1);
      else text = `${text} ${pick(["and", "or", "&&"])} ${pick(differentialExpressions)}`;
    }
    for (const linkType of [1, 113, 276, 101]) {
      const before = Date.now();
      try {
        const filter = compileFilter(text, { linkType });
        filter.matches(new Uint8Array(64));
        compiled++;
      } catch (error) {
        if (!(error instanceof FilterSyntaxError)) assert.fail(`${JSON.stringify(text)} threw ${String(error)}`);
        assert.ok(error.position >= 0 && error.position <= text.length, `position ${error.position} in ${JSON.stringify(text)}`);
        rejected++;
      }
      assert.ok(Date.now() - before < 500, `${JSON.stringify(text)} took ${Date.now() - before} ms`);
    }
  }
  assert.ok(compiled > 500 && rejected > 1000, `compiled ${compiled}, rejected ${rejected}`);
});

test("fuzz: long chains and deep nesting are refused or compiled, never a stack overflow", () => {
  const long = Array.from({ length: 300 }, (_, i) => `port ${i}`).join(" or ");
  assert.ok(compileFilter(long, { linkType: 1 }).matches(new Uint8Array(60)) === false);
  const nested = "not ".repeat(3000) + "tcp";
  try {
    compileFilter(nested, { linkType: 1 });
  } catch (error) {
    assert.ok(error instanceof FilterSyntaxError);
  }
  assert.throws(() => compileFilter("tcp or ".repeat(5000) + "tcp", { linkType: 1 }), FilterSyntaxError);
});
