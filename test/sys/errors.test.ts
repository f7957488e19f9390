import { test } from "node:test";
import assert from "node:assert/strict";
import { SyscallError, UsageError, capabilityNumbers, defaultHint, effectiveCapabilities, errnoName, errnoNumber, hasCapability, permissionHint } from "../../src/sys/errors.js";

test("errno names round-trip", () => {
  assert.equal(errnoName(1), "EPERM");
  assert.equal(errnoNumber("ENOENT"), 2);
  assert.equal(errnoName(524), "ENOTSUPP");
});

test("SyscallError carries operation, code and a privilege hint", () => {
  const e = new SyscallError("map create", 1);
  assert.equal(e.code, "EPERM");
  assert.equal(e.operation, "map create");
  assert.equal(e.hint, permissionHint());
  assert.ok(e.message.startsWith(`map create: failed with EPERM (${permissionHint()})`));
});

function capabilitySet(...names: (keyof typeof capabilityNumbers)[]): bigint {
  return names.reduce((set, name) => set | (1n << BigInt(capabilityNumbers[name])), 0n);
}

test("the EPERM hint tells a missing privilege from another cause", () => {
  // Nothing: name what is missing and suggest root.
  assert.equal(permissionHint(["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN"], 0n), "the process lacks CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN: run as root, or grant them");
  // Only what is missing is named.
  assert.match(permissionHint(["CAP_BPF", "CAP_NET_ADMIN"], capabilitySet("CAP_BPF")), /^the process lacks CAP_NET_ADMIN: run as root, or grant it$/);
  // CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON, as in the kernel.
  assert.doesNotMatch(permissionHint(["CAP_BPF", "CAP_PERFMON"], capabilitySet("CAP_SYS_ADMIN")), /run as root/);
  // Root without CAP_SYS_RESOURCE (this project's machines): not a privilege problem, and no "run as root".
  const rootWithoutSysResource = capabilitySet("CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_SYS_ADMIN");
  const hint = permissionHint(undefined, rootWithoutSysResource);
  assert.doesNotMatch(hint, /run as root/);
  assert.match(hint, /not a missing privilege/);
  assert.match(hint, /lacks CAP_SYS_RESOURCE/);
  assert.doesNotMatch(permissionHint(undefined, rootWithoutSysResource | capabilitySet("CAP_SYS_RESOURCE")), /CAP_SYS_RESOURCE/);
  // Unreadable capabilities: the plain advice.
  assert.equal(permissionHint(["CAP_BPF"], null), "run as root, or grant CAP_BPF");
});

test("this process's own capabilities decide the hint it gets", () => {
  const capabilities = effectiveCapabilities();
  assert.notEqual(capabilities, null, "/proc/self/status has CapEff on Linux");
  const bpf = (capabilities! >> 39n) & 1n || (capabilities! >> 21n) & 1n;
  assert.equal(/run as root/.test(permissionHint(["CAP_BPF"])), !bpf);
});

test("errno and capability functions refuse what is not an errno or a capability, naming the argument", () => {
  const usage = (pattern: RegExp) => (error: unknown) => error instanceof UsageError && pattern.test((error as Error).message);
  assert.throws(() => errnoNumber("ENOSUCH"), usage(/name must be an errno name such as "ENOENT", got "ENOSUCH"/));
  assert.throws(() => errnoName(-1), usage(/errno must be an integer ≥ 0, got -1/));
  assert.throws(() => hasCapability("CAP_ROOT" as never, 0n), usage(/name must be one of "CAP_NET_ADMIN", .*got "CAP_ROOT"/));
  assert.throws(() => hasCapability("CAP_BPF", 5 as never), usage(/capabilities must be a capability set \(a bigint\) or null, got 5/));
  assert.throws(() => permissionHint(["CAP_BPF", "bpf" as never], 0n), usage(/needed\[1\] must be one of/));
  assert.throws(() => defaultHint(1 as never), usage(/code must be a string/));
});

test("errno names cover Linux's own errnos that Node's table lacks", () => {
  assert.equal(errnoName(77), "EBADFD");
  assert.equal(errnoName(95), "EOPNOTSUPP");
  assert.equal(errnoName(524), "ENOTSUPP");
  assert.equal(errnoName(515), "ENOIOCTLCMD");
  assert.equal(errnoName(1), "EPERM");
  assert.equal(errnoNumber("EBADFD"), 77);
  assert.equal(errnoName(4000), "errno 4000");
});
