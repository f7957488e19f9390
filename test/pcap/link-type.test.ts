import { test } from "node:test";
import assert from "node:assert/strict";
import { LinkType, linkTypeFromName, linkTypeName } from "../../src/pcap/link-type.js";

test("link-type numbers match the LINKTYPE registry", () => {
  assert.equal(LinkType.NULL, 0);
  assert.equal(LinkType.ETHERNET, 1);
  assert.equal(LinkType.RAW, 101);
  assert.equal(LinkType.LOOP, 108);
  assert.equal(LinkType.LINUX_SLL, 113);
  assert.equal(LinkType.IEEE802_11_RADIOTAP, 127);
  assert.equal(LinkType.IPV4, 228);
  assert.equal(LinkType.IPV6, 229);
  assert.equal(LinkType.NFLOG, 239);
  assert.equal(LinkType.LINUX_SLL2, 276);
});

test("names and numbers convert both ways", () => {
  assert.equal(linkTypeName(1), "ETHERNET");
  assert.equal(linkTypeName(276), "LINUX_SLL2");
  assert.equal(linkTypeName(60000), "LINKTYPE_60000");
  assert.equal(linkTypeFromName("ethernet"), 1);
  assert.equal(linkTypeFromName("EN10MB"), 1);
  assert.equal(linkTypeFromName("DLT_LINUX_SLL"), 113);
  assert.equal(linkTypeFromName("LINKTYPE_RAW"), 101);
  assert.equal(linkTypeFromName("147"), 147);
  assert.equal(linkTypeFromName("70000"), undefined);
  assert.equal(linkTypeFromName("toString"), undefined);
  assert.equal(linkTypeFromName("no-such-type"), undefined);
  for (const [name, value] of Object.entries(LinkType)) assert.equal(linkTypeFromName(name), value);
});

test("link type: names and numbers are checked where the table has no answer", () => {
  assert.equal(linkTypeName(42), "LINKTYPE_42");
  assert.throws(() => linkTypeName(-1), /linkType must be an integer/);
  assert.throws(() => linkTypeName("1" as unknown as number), /linkType must be an integer/);
  assert.throws(() => linkTypeFromName(1 as unknown as string), /name must be a string/);
});
