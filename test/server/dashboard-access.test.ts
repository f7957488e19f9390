import { test } from "node:test";
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { checkToken, DashboardAccess, isLoopbackHost } from "../../src/server/dashboard-access.js";
import { UsageError } from "../../src/sys/errors.js";

function request(headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}
const none = new URLSearchParams();

test("loopback hosts", () => {
  for (const host of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"]) assert.equal(isLoopbackHost(host), true, host);
  for (const host of ["0.0.0.0", "::", "192.0.2.1", "10.0.0.1", "128.0.0.1", "localhost.example", "evil.example", ""]) assert.equal(isLoopbackHost(host), false, host);
});

test("on loopback no token is needed, but the request must name a loopback host", () => {
  const access = DashboardAccess.forListen("127.0.0.1");
  assert.equal(access.required, false);
  assert.equal(access.check(request({ host: "127.0.0.1:9435" }), none), "allowed");
  assert.equal(access.check(request({ host: "localhost:9435" }), none), "allowed");
  assert.equal(access.check(request({ host: "[::1]:9435" }), none), "allowed");
  // DNS rebinding: a name that resolves to 127.0.0.1 but is not loopback.
  assert.equal(access.check(request({ host: "evil.example:9435" }), none), "host not allowed");
  assert.equal(access.check(request({}), none), "host not allowed");
});

test("beyond loopback a random token is made and required, from a header, the cookie or the query", () => {
  const first = DashboardAccess.forListen("0.0.0.0");
  const second = DashboardAccess.forListen("192.0.2.1");
  assert.equal(first.required, true);
  assert.ok(first.token!.length >= 32);
  assert.notEqual(first.token, second.token);
  const token = first.token!;
  assert.equal(first.check(request({ host: "192.0.2.1" }), none), "token missing");
  assert.equal(first.check(request({ authorization: `Bearer ${token}` }), none), "allowed");
  assert.equal(first.check(request({ cookie: `other=1; netbpf_token=${token}` }), none), "allowed");
  assert.equal(first.check(request({}), new URLSearchParams({ token })), "allowed");
  assert.equal(first.check(request({ authorization: `Bearer ${token}x` }), none), "token wrong");
  assert.equal(first.check(request({ authorization: `Bearer ${second.token}` }), none), "token wrong");
  assert.equal(first.check(request({ cookie: "netbpf_token=" }), none), "token wrong");
});

test("a given token is used on any address; bad tokens are refused", () => {
  const access = DashboardAccess.forListen("127.0.0.1", "a-given-token-of-20ch");
  assert.equal(access.required, true);
  assert.equal(access.check(request({ host: "127.0.0.1" }), none), "token missing");
  assert.equal(access.check(request({ authorization: "Bearer a-given-token-of-20ch" }), none), "allowed");
  assert.throws(() => checkToken("short"), /16-256 characters/);
  assert.throws(() => checkToken("has space in the token!"), /16-256 characters/);
  assert.throws(() => checkToken("x".repeat(257)), /16-256 characters/);
  assert.equal(checkToken("A.b_c~d-0123456789"), "A.b_c~d-0123456789");
});

test("dashboard access refuses a host or token that is not text, and never echoes a token", () => {
  assert.throws(() => DashboardAccess.forListen(42 as never), (error: unknown) => error instanceof UsageError && /^dashboard access: host must be a string, got 42 \(a number\)$/.test(error.message));
  assert.throws(() => DashboardAccess.forListen("0.0.0.0", 42 as never), (error: unknown) => error instanceof UsageError && /token must be a string, got 42/.test(error.message));
  assert.throws(() => DashboardAccess.forListen("0.0.0.0", "secret words"), (error: unknown) => error instanceof UsageError && !error.message.includes("secret"));
  assert.throws(() => isLoopbackHost(undefined as never), (error: unknown) => error instanceof UsageError && /^is loopback host: host must be a string, got undefined$/.test(error.message));
});
