/**
 * Who may use the dashboard. On a loopback address nobody else can connect,
 * so no token is needed (unless one is given); on any other address a token
 * is required — the one given, or a random one made at start and printed.
 * A request carries it as `Authorization: Bearer TOKEN`, the cookie the
 * page gets after opening `/?token=TOKEN`, or `?token=TOKEN`. Without a
 * token, only requests naming a loopback host are answered (a page of some
 * web site cannot reach the dashboard by pointing a domain at 127.0.0.1).
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIPv4 } from "node:net";
import { argumentError, expectInstance, expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";

export const tokenCookieName = "netbpf_token";

/** Loopback: 127.0.0.0/8, ::1, ::ffff:127.x.y.z, "localhost". */
export function isLoopbackHost(host: string): boolean {
  expectString("is loopback host", "host", host);
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (bare === "localhost" || bare === "::1" || bare === "0:0:0:0:0:0:0:1") return true;
  const ipv4 = bare.replace(/^::ffff:/, "");
  return isIPv4(ipv4) && ipv4.startsWith("127.");
}

/** A token given on the command line: 16-256 characters of [A-Za-z0-9._~-] (safe in a URL and a cookie). */
export function checkToken(token: string): string {
  if (!/^[A-Za-z0-9._~-]{16,256}$/.test(token)) throw new UsageError("serve", "a token needs 16-256 characters among A-Z a-z 0-9 . _ ~ -", "or leave --token out to get a random one");
  return token;
}

export type AccessDecision = "allowed" | "token missing" | "token wrong" | "host not allowed";

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return undefined;
}

/** The host name of a Host header ("[::1]:9435" → "::1", "localhost:80" → "localhost"). */
function hostName(header: string | undefined): string {
  const value = (header ?? "").trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
  if (bracketed) return bracketed[1]!;
  return value.replace(/:\d+$/, "");
}

/** An HTTP request and its query from a caller. */
function checkRequest(request: unknown, query: unknown): void {
  const headers = (request as IncomingMessage | null)?.headers;
  if (typeof request !== "object" || request === null || typeof headers !== "object" || headers === null) {
    throw argumentError("dashboard access", "request", "an HTTP request (an IncomingMessage)", request);
  }
  expectInstance("dashboard access", "query", query, URLSearchParams, "a URLSearchParams (the request's query)");
}

export class DashboardAccess {
  /** The token in force, or undefined (loopback, none given). */
  readonly token: string | undefined;
  readonly #expected: Buffer | undefined;

  private constructor(token: string | undefined) {
    // checkToken's message does not repeat the token: it is a secret.
    if (token !== undefined) checkToken(expectString("dashboard access", "token", token));
    this.token = token;
    this.#expected = token === undefined ? undefined : Buffer.from(token);
  }

  /** For a listening host: a given token is checked and used; beyond loopback a random one is made when none is given. */
  static forListen(host: string, token?: string): DashboardAccess {
    expectString("dashboard access", "host", host);
    if (token !== undefined) return new DashboardAccess(token);
    if (isLoopbackHost(host)) return new DashboardAccess(undefined);
    return new DashboardAccess(randomBytes(24).toString("base64url"));
  }

  get required(): boolean {
    return this.token !== undefined;
  }

  /** The token a request carries (header, cookie or query), if any. */
  static presented(request: IncomingMessage, query: URLSearchParams): string | undefined {
    checkRequest(request, query);
    const authorization = request.headers.authorization;
    const bearer = authorization !== undefined ? /^Bearer\s+(\S+)$/i.exec(authorization)?.[1] : undefined;
    return bearer ?? query.get("token") ?? cookieValue(request.headers.cookie, tokenCookieName);
  }

  /** Decides about one request. */
  check(request: IncomingMessage, query: URLSearchParams): AccessDecision {
    checkRequest(request, query);
    if (this.#expected === undefined) return isLoopbackHost(hostName(request.headers.host)) ? "allowed" : "host not allowed";
    const presented = DashboardAccess.presented(request, query);
    if (presented === undefined) return "token missing";
    const given = Buffer.from(presented);
    return given.length === this.#expected.length && timingSafeEqual(given, this.#expected) ? "allowed" : "token wrong";
  }
}
