/**
 * "First time seen" for alert rules: whether a destination (an outbound
 * flow's protocol, remote address and port) or a listener (a listening
 * socket's protocol, address and port) occurred before in the recorded
 * history. The alert engine keeps what it saw in this run in memory and asks
 * a SeenHistory about everything older: the audit log can answer that from
 * its stored records, or a FileSeenHistory keeps the keys in a file of its
 * own across runs.
 */
import { appendFileSync, closeSync, openSync, readFileSync } from "node:fs";
import { expectInteger, expectIterable, expectObject, expectOneOf, expectString } from "../sys/argument-checks.js";
import { UsageError } from "../sys/errors.js";
import { expectAuditRecord, type AuditRecord } from "./audit-record.js";

export type SeenKind = "destination" | "listener";

export interface SeenKey {
  kind: SeenKind;
  protocol: "tcp" | "udp";
  address: string;
  port: number;
}

const seenKinds: readonly SeenKind[] = ["destination", "listener"];
const seenProtocols: readonly SeenKey["protocol"][] = ["tcp", "udp"];

/**
 * A SeenKey from a caller, in a parameter named `key`. The names are
 * constants so a valid key costs no allocation: histories check every key
 * they are asked about.
 */
export function expectSeenKey(operation: string, value: unknown): SeenKey {
  const key = expectObject<SeenKey>(operation, "key", value);
  expectOneOf(operation, "key.kind", key.kind, seenKinds);
  expectOneOf(operation, "key.protocol", key.protocol, seenProtocols);
  expectString(operation, "key.address", key.address);
  expectInteger(operation, "key.port", key.port, 0, 65535);
  return key;
}

/** The key as one line of text: `destination tcp 192.0.2.1 443`. */
export function seenKeyText(key: SeenKey): string {
  return keyLine(expectSeenKey("seen key text", key));
}

function keyLine(key: SeenKey): string {
  return `${key.kind} ${key.protocol} ${key.address} ${key.port}`;
}

/** The keys a record carries: a destination for an outbound connection or UDP flow, a listener for a listen record. */
export function recordSeenKeys(record: AuditRecord): SeenKey[] {
  expectAuditRecord("record seen keys", "record", record);
  const flow = record.flow;
  if (flow === null) return [];
  if (record.kind === "listen") return [{ kind: "listener", protocol: flow.protocol, address: flow.localAddress, port: flow.localPort }];
  if ((record.kind === "connection" || record.kind === "udp") && flow.direction === "outbound") {
    return [{ kind: "destination", protocol: flow.protocol, address: flow.remoteAddress, port: flow.remotePort }];
  }
  return [];
}

/** What was seen before the current run (or before a record). */
export interface SeenHistory {
  /**
   * Whether the key occurred in a record before `record` (a history backed
   * by the audit log answers from records with a lower sequence number).
   */
  seenBefore(key: SeenKey, record: AuditRecord): boolean | Promise<boolean>;
  /** The engine saw the key in `record` (a history that stores keys itself keeps it; one backed by the log can ignore it). */
  remember?(key: SeenKey, record: AuditRecord): void | Promise<void>;
  close?(): void | Promise<void>;
}

/**
 * Keys kept in memory, oldest forgotten first beyond `limit` (a forgotten
 * key, seen again, counts as new unless a longer history knows it).
 */
export class MemorySeenHistory implements SeenHistory {
  readonly limit: number;
  readonly #keys = new Set<string>();

  constructor(limit = 1_000_000) {
    this.limit = expectInteger("seen history", "limit", limit, 1);
  }

  get size(): number {
    return this.#keys.size;
  }

  has(key: SeenKey): boolean {
    const text = keyLine(expectSeenKey("look up a seen key", key));
    if (!this.#keys.has(text)) return false;
    // Most recently seen last: the oldest is forgotten first.
    this.#keys.delete(text);
    this.#keys.add(text);
    return true;
  }

  seenBefore(key: SeenKey): boolean {
    return this.has(key);
  }

  remember(key: SeenKey): void {
    const text = keyLine(expectSeenKey("remember a seen key", key));
    this.#keys.delete(text);
    this.#keys.add(text);
    if (this.#keys.size > this.limit) this.#keys.delete(this.#keys.values().next().value!);
  }
}

/**
 * Keys kept in a text file, one per line (`destination tcp 192.0.2.1 443`),
 * read when opened and appended to as new keys are seen: first-seen alerts
 * survive restarts without an audit log. Appends are small synchronous
 * writes (one line per new key, not per record).
 */
export class FileSeenHistory implements SeenHistory {
  readonly path: string;
  readonly #keys = new Set<string>();
  #fd: number | undefined;

  private constructor(path: string, fd: number, keys: Iterable<string>) {
    this.path = expectString("open seen history", "path", path);
    this.#fd = expectInteger("open seen history", "fd", fd, 0);
    expectIterable("open seen history", "keys", keys);
    for (const key of keys) this.#keys.add(key);
  }

  /** Opens (creating it if missing) the file; a UsageError when it cannot be read or written. */
  static open(path: string): FileSeenHistory {
    expectString("open seen history", "path", path);
    let fd: number;
    let text: string;
    try {
      fd = openSync(path, "a+", 0o600);
      text = readFileSync(path, "utf8");
    } catch (error) {
      throw new UsageError("open seen history", `cannot use ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, "give a writable file path");
    }
    const keys = text.split("\n").filter((line) => /^(destination|listener) (tcp|udp) \S+ \d+$/.test(line));
    return new FileSeenHistory(path, fd, keys);
  }

  get size(): number {
    return this.#keys.size;
  }

  seenBefore(key: SeenKey): boolean {
    return this.#keys.has(keyLine(expectSeenKey("look up a seen key", key)));
  }

  remember(key: SeenKey): void {
    const text = keyLine(expectSeenKey("remember a seen key", key));
    if (this.#keys.has(text)) return;
    this.#keys.add(text);
    if (this.#fd !== undefined) appendFileSync(this.#fd, `${text}\n`);
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}
