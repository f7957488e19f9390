import { test } from "node:test";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import assert from "node:assert/strict";
import { attributeString, AttributeWriter, parseAttributes, RouteMessageType, RouteNetlink } from "../../src/sys/netlink.js";
import { SyscallError } from "../../src/sys/errors.js";
import { interfaceIndex } from "../../src/sys/socket.js";
import { isRoot, skipUnlessKernel } from "../support/kernel.js";

test("attributes are 4-byte aligned, nest, and parse back", () => {
  const buffer = new AttributeWriter()
    .string(1, "bpf")
    .nested(2, (w) => w.u32(6, 0xdeadbeef).u8(9, 7).string(7, "name"))
    .u16(3, 0x1234)
    .toBuffer();
  // "bpf\0" = 4 bytes + 4 header = 8; nested: 8 + 8 (u8 padded) + 9→12 = 28 + 4 = 32; u16: 6 → 8.
  assert.equal(buffer.length, 8 + 32 + 8);
  assert.equal(buffer.readUInt16LE(8 + 2), 2 | 0x8000, "nested attributes carry NLA_F_NESTED");
  const top = parseAttributes(buffer);
  assert.equal(attributeString(top.get(1)), "bpf");
  assert.equal(top.get(3)!.readUInt16LE(0), 0x1234);
  const inner = parseAttributes(top.get(2)!);
  assert.equal(inner.get(6)!.readUInt32LE(0), 0xdeadbeef);
  assert.equal(inner.get(9)![0], 7);
  assert.equal(attributeString(inner.get(7)), "name");
});

test("attribute parsing never reads past the end of truncated or random input", () => {
  let seed = 0x5eed1234;
  const random = () => {
    seed ^= seed << 13; seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5; seed >>>= 0;
    return seed / 0x100000000;
  };
  const valid = new AttributeWriter().string(1, "clsact").nested(2, (w) => w.u32(1, 1).u32(2, 2)).toBuffer();
  for (let i = 0; i < 2000; i++) {
    const input = Buffer.from(valid);
    for (let j = 0; j < 3; j++) input[Math.floor(random() * input.length)] = Math.floor(random() * 256);
    const cut = input.subarray(0, Math.floor(random() * (input.length + 1)));
    for (const value of parseAttributes(cut).values()) {
      assert.ok(value.byteOffset >= cut.byteOffset && value.byteOffset + value.length <= cut.byteOffset + cut.length);
    }
  }
});

test("a link dump lists the loopback interface with its index", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs netlink")) return;
  using netlink = RouteNetlink.open();
  const messages = netlink.dump(RouteMessageType.GetLink, Buffer.alloc(16), { operation: "list links" });
  // struct ifinfomsg: family u8, pad, type u16, index i32, flags u32, change u32; IFLA_IFNAME = 3.
  const names = new Map(messages.map((m) => [attributeString(parseAttributes(m.payload, 16).get(3)), m.payload.readInt32LE(4)]));
  assert.equal(names.get("lo"), interfaceIndex("lo"));
});

test("a refused netlink request becomes a SyscallError naming the operation", (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs netlink")) return;
  using netlink = RouteNetlink.open();
  // Deleting a qdisc from an interface index that does not exist.
  const tcmsg = Buffer.alloc(20);
  tcmsg.writeInt32LE(0x7ffffff0, 4);
  tcmsg.writeUInt32LE(0xffff0000, 8);
  tcmsg.writeUInt32LE(0xfffffff1, 12);
  assert.throws(() => netlink.request(RouteMessageType.DeleteQdisc, 0, tcmsg, { operation: "delete qdisc from nowhere", hints: { ENODEV: "no such device" } }),
    (e: Error) => e instanceof SyscallError && e.code === "ENODEV" && /delete qdisc from nowhere/.test(e.message) && /no such device/.test(e.message));
});

test("without CAP_NET_ADMIN a tc change fails with EPERM and says what is needed", (t) => {
  const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p));
  if (skipUnlessKernel(t, isRoot() && setpriv !== undefined, "needs root and setpriv to run a child without capabilities")) return;
  const modules = new URL("../../src/sys/", import.meta.url).href;
  const script = `
const { RouteNetlink } = await import(${JSON.stringify(modules + "netlink.js")});
const { addClsact } = await import(${JSON.stringify(modules + "traffic-control.js")});
const netlink = RouteNetlink.open();
try { addClsact(netlink, 1, "lo"); console.log("added?!"); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
`;
  const result = spawnSync(setpriv!, ["--bounding-set=-all", "--inh-caps=-all", process.execPath, "--input-type=module", "-e", script], { encoding: "utf8", timeout: 20_000 });
  const outcome = JSON.parse(result.stdout) as { code: string; message: string };
  assert.equal(outcome.code, "EPERM");
  assert.match(outcome.message, /add clsact qdisc to lo: failed with EPERM \(needs root or CAP_NET_ADMIN\)/);
});
