import { statSync } from "node:fs";
import { expectProgram, type Program } from "../core/program.js";
import { expectInteger, expectObject, expectString } from "../sys/argument-checks.js";
import { ProgramType } from "../sys/bpf-constants.js";
import { SyscallError, UsageError } from "../sys/errors.js";
import { RouteNetlink } from "../sys/netlink.js";
import { interfaceIndex, interfaceName } from "../sys/socket.js";
import { addBpfFilter, addClsact, ClsactParent, deleteClsact, deleteFilter, listFilters, type Filter } from "../sys/traffic-control.js";
import { TcLink, type TcDirection } from "./tc-link.js";

export interface NetlinkTcOptions {
  /** Interface name or index (in the calling thread's network namespace). */
  interface: string | number;
  direction: TcDirection;
  /** Filter priority 1..65535 (lower runs first); the kernel picks one when omitted. */
  priority?: number;
  /** Filter handle; the kernel picks one when omitted. */
  handle?: number;
}

/**
 * Per interface and network namespace: the netlink socket used to clean up
 * (it stays in the namespace it was opened in), whether we created the
 * clsact qdisc, and how many of our filters are on it.
 */
interface ClsactUse {
  netlink: RouteNetlink;
  createdQdisc: boolean;
  users: number;
}
const clsactUses = new Map<string, ClsactUse>();

function namespaceKey(ifindex: number): string {
  let namespace = "?";
  try {
    namespace = String(statSync("/proc/thread-self/ns/net").ino);
  } catch {
    // Without /proc all attachments share one key; still correct within one namespace.
  }
  return `${namespace}:${ifindex}`;
}

export function checkTcProgram(program: Program, operation: string): void {
  expectString("check tc program", "operation", operation);
  expectProgram(operation, program);
  if (program.type !== ProgramType.SchedCls && program.type !== ProgramType.SchedAct) {
    throw new UsageError(operation, `a tc program must be of type SchedCls, not ${ProgramType[program.type] ?? program.type}`, "load it with type ProgramType.SchedCls");
  }
}

function checkFilterNumber(value: number | undefined, what: string, operation: string, max: number): number {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 1 || value > max) throw new UsageError(operation, `${what} must be an integer from 1 to ${max}, got ${value}`);
  return value;
}

/** A cls_bpf filter in direct-action mode on a clsact qdisc, managed over rtnetlink. */
export class NetlinkTcLink extends TcLink {
  readonly priority: number;
  readonly handle: number;
  #filter: Filter;
  #key: string;
  #use: ClsactUse;

  /** @internal */
  constructor(ifindex: number, name: string, direction: TcDirection, filter: Filter, key: string, use: ClsactUse) {
    expectInteger("construct NetlinkTcLink", "ifindex", ifindex, 1);
    expectObject("construct NetlinkTcLink", "filter", filter);
    super(undefined, "netlink", ifindex, name, direction);
    this.#filter = filter;
    this.priority = filter.priority;
    this.handle = filter.handle;
    this.#key = key;
    this.#use = use;
  }

  /** Replaces the filter's program in place (same priority and handle). */
  override update(program: Program): void {
    checkTcProgram(program, `update ${this.description}`);
    if (this.closed) throw new UsageError(`update ${this.description}`, "the link is closed");
    addBpfFilter(this.#use.netlink, {
      ifindex: this.interfaceIndex, interfaceLabel: this.interfaceName, parent: this.#filter.parent,
      programFd: program.fd.value, programName: program.name || "netbpf", priority: this.priority, handle: this.handle, replace: true,
    });
  }

  protected override release(): void {
    const use = this.#use;
    let failure: unknown;
    try {
      deleteFilter(use.netlink, this.interfaceIndex, this.interfaceName, this.#filter);
    } catch (error) {
      // Gone already: the interface, the qdisc or the filter was removed by someone else.
      if (!(error instanceof SyscallError && ["ENOENT", "ENODEV", "EINVAL"].includes(error.code))) failure = error;
    }
    use.users -= 1;
    if (use.users === 0) {
      clsactUses.delete(this.#key);
      try {
        if (use.createdQdisc && !hasFilters(use.netlink, this.interfaceIndex)) deleteClsact(use.netlink, this.interfaceIndex, this.interfaceName);
      } catch (error) {
        if (!(error instanceof SyscallError && ["ENOENT", "ENODEV", "EINVAL"].includes(error.code))) failure ??= error;
      }
      use.netlink.close();
    }
    if (failure) throw failure;
  }
}

function hasFilters(netlink: RouteNetlink, ifindex: number): boolean {
  return listFilters(netlink, ifindex, ClsactParent.Ingress).length > 0 || listFilters(netlink, ifindex, ClsactParent.Egress).length > 0;
}

/**
 * Attaches through the classic tc path: adds a clsact qdisc when the
 * interface has none, then a direct-action cls_bpf filter. Closing deletes
 * exactly that filter, and the qdisc too when this process created it and no
 * filters are left on it.
 */
export function attachNetlinkTc(program: Program, options: NetlinkTcOptions): NetlinkTcLink {
  expectProgram("attach tc", program);
  expectObject("attach tc", "options", options);
  const operation = `attach tc ${options.direction}`;
  checkTcProgram(program, operation);
  if (options.direction !== "ingress" && options.direction !== "egress") {
    throw new UsageError(operation, `direction must be "ingress" or "egress", got ${JSON.stringify(options.direction)}`);
  }
  const priority = checkFilterNumber(options.priority, "priority", operation, 0xffff);
  const handle = checkFilterNumber(options.handle, "handle", operation, 0xffffffff);
  const ifindex = interfaceIndex(options.interface, operation, "options.interface");
  const name = interfaceName(ifindex) ?? String(ifindex);
  const key = namespaceKey(ifindex);
  let use = clsactUses.get(key);
  let fresh = false;
  if (!use) {
    const netlink = RouteNetlink.open();
    try {
      use = { netlink, createdQdisc: addClsact(netlink, ifindex, name), users: 0 };
    } catch (error) {
      netlink.close();
      throw error;
    }
    clsactUses.set(key, use);
    fresh = true;
  }
  try {
    const filter = addBpfFilter(use.netlink, {
      ifindex, interfaceLabel: name, parent: options.direction === "ingress" ? ClsactParent.Ingress : ClsactParent.Egress,
      programFd: program.fd.value, programName: program.name || "netbpf", priority, handle,
    });
    use.users += 1;
    return new NetlinkTcLink(ifindex, name, options.direction, filter, key, use);
  } catch (error) {
    if (fresh) {
      clsactUses.delete(key);
      try {
        if (use.createdQdisc && !hasFilters(use.netlink, ifindex)) deleteClsact(use.netlink, ifindex, name);
      } finally {
        use.netlink.close();
      }
    }
    throw error;
  }
}
