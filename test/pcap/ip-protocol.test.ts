import { test } from "node:test";
import assert from "node:assert/strict";
import { parseProtocol, protocolName } from "../../src/pcap/ip-protocol.js";
import { protocolName as firewallProtocolName } from "../../src/firewall/traffic-match.js";
import { UsageError } from "../../src/sys/errors.js";

test("one table names IP protocols for the monitor and the firewall, both ways", () => {
  for (const name of ["icmp", "tcp", "udp", "gre", "esp", "ah", "icmp6", "sctp"]) {
    assert.equal(protocolName(parseProtocol(name)), name);
    assert.equal(parseProtocol(name.toUpperCase()), parseProtocol(name));
  }
  assert.equal(protocolName(6), "tcp");
  assert.equal(protocolName(89), "89");
  assert.equal(parseProtocol("89"), 89);
  assert.equal(firewallProtocolName, protocolName);
  for (const bad of ["256", "tpc", ""]) assert.throws(() => parseProtocol(bad), UsageError, bad);
});

test("ip protocol: a number outside 0-255 or a text that is not a string is refused", () => {
  assert.throws(() => protocolName(256), (error: unknown) => error instanceof UsageError && error.message.includes("protocol must be an integer from 0 to 255"));
  assert.throws(() => parseProtocol(6 as unknown as string), (error: unknown) => error instanceof UsageError && error.message.includes("text must be a string"));
});
