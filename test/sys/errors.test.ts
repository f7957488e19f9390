import { test } from "node:test";
import assert from "node:assert/strict";
import { SyscallError, errnoName, errnoNumber } from "../../src/sys/errors.js";

test("errno names round-trip", () => {
  assert.equal(errnoName(1), "EPERM");
  assert.equal(errnoNumber("ENOENT"), 2);
  assert.equal(errnoName(524), "ENOTSUPP");
});

test("SyscallError carries operation, code and a privilege hint", () => {
  const e = new SyscallError("map create", 1);
  assert.equal(e.code, "EPERM");
  assert.equal(e.operation, "map create");
  assert.match(e.message, /map create: failed with EPERM \(run as root/);
});
