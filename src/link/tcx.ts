import { expectProgram, Program } from "../core/program.js";
import { AttachFlag, AttachType } from "../sys/bpf-constants.js";
import { linkCreate } from "../sys/bpf.js";
import { SyscallError, UnsupportedFeatureError, UsageError } from "../sys/errors.js";
import { interfaceIndex, interfaceName } from "../sys/socket.js";
import { Link } from "./link.js";
import { attachNetlinkTc, checkTcProgram, type NetlinkTcLink } from "./netlink-tc.js";
import { TcLink, type TcDirection, type TcMechanism } from "./tc-link.js";
import { expectInteger, expectObject } from "../sys/argument-checks.js";

/**
 * Where to insert among the programs already on a tcx hook: relative to a
 * program or link (object or kernel id), or "all" (first / last).
 */
export type TcxAnchor = Program | Link | { programId: number } | { linkId: number } | "all";

export interface TcxOptions {
  /** Interface name or index (in the calling thread's network namespace). */
  interface: string | number;
  direction: TcDirection;
  /** Run before this program/link, or before all ("all") — tcx only. */
  before?: TcxAnchor;
  /** Run after this program/link, or after all ("all") — tcx only. */
  after?: TcxAnchor;
  /** Fail unless the hook's revision is still this (tcx only). */
  expectedRevision?: bigint;
  /** "tcx" or "netlink" forces one mechanism; by default tcx, falling back to netlink where tcx is missing. */
  mechanism?: TcMechanism;
  /** Netlink filter priority and handle (netlink only). */
  priority?: number;
  handle?: number;
}

/** A tcx link: a kernel BPF link on the interface's tcx hook. */
export class TcxLink extends TcLink {
  /** @internal */
  constructor(fd: number, ifindex: number, name: string, direction: TcDirection) {
    expectInteger("construct TcxLink", "fd", fd, 0);
    expectInteger("construct TcxLink", "ifindex", ifindex, 1);
    super(fd, "tcx", ifindex, name, direction);
  }
}

function anchor(value: TcxAnchor | undefined, flag: number, operation: string): { flags: number; relative: number } {
  if (value === undefined) return { flags: 0, relative: 0 };
  if (value === "all") return { flags: flag, relative: 0 };
  if (value instanceof Link) return { flags: flag | AttachFlag.Link, relative: value.fd.value };
  if (value instanceof Program) return { flags: flag, relative: value.fd.value };
  const id = (value as { programId?: unknown; linkId?: unknown } | null)?.programId ?? (value as { linkId?: unknown } | null)?.linkId;
  if (typeof id === "number" && Number.isInteger(id) && id > 0) {
    return { flags: flag | AttachFlag.Id | ("linkId" in (value as object) ? AttachFlag.Link : 0), relative: id };
  }
  throw new UsageError(operation, `before/after must be a Program, a Link, { programId }, { linkId } or "all", got ${JSON.stringify(value)}`);
}

/**
 * Attaches a SchedCls program to an interface's tc ingress or egress. Uses a
 * tcx link when the kernel has tcx; otherwise a clsact qdisc and a
 * direct-action cls_bpf filter over netlink. `link.mechanism` says which.
 */
export function attachTcx(program: Program, options: TcxOptions): TcxLink | NetlinkTcLink {
  expectProgram("attach tcx", program);
  expectObject("attach tcx", "the options", options);
  const operation = `attach tcx ${options.direction}`;
  checkTcProgram(program, operation);
  if (options.direction !== "ingress" && options.direction !== "egress") {
    throw new UsageError(operation, `direction must be "ingress" or "egress", got ${JSON.stringify(options.direction)}`);
  }
  if (options.before !== undefined && options.after !== undefined) throw new UsageError(operation, "give either before or after, not both");
  if (options.mechanism !== undefined && options.mechanism !== "tcx" && options.mechanism !== "netlink") {
    throw new UsageError(operation, `mechanism must be "tcx" or "netlink", got ${JSON.stringify(options.mechanism)}`);
  }
  if (options.mechanism === "netlink") return attachNetlinkTc(program, options);
  const ifindex = interfaceIndex(options.interface, operation, "options.interface");
  const name = interfaceName(ifindex) ?? String(ifindex);
  const position = options.before !== undefined ? anchor(options.before, AttachFlag.Before, operation) : anchor(options.after, AttachFlag.After, operation);
  try {
    const fd = linkCreate({
      programFd: program.fd.value,
      targetFd: ifindex,
      attachType: options.direction === "ingress" ? AttachType.TcxIngress : AttachType.TcxEgress,
      flags: position.flags,
      relativeFdOrId: position.flags || options.expectedRevision !== undefined ? position.relative : undefined,
      expectedRevision: options.expectedRevision,
    }, `${operation} on ${name}`);
    return new TcxLink(fd, ifindex, name, options.direction);
  } catch (error) {
    // A kernel without tcx rejects the attach type itself.
    const missing = error instanceof SyscallError && ["EINVAL", "EOPNOTSUPP", "ENOTSUPP"].includes(error.code);
    // With ordering options EINVAL more likely means a bad anchor than a kernel without tcx.
    const ordered = options.before !== undefined || options.after !== undefined || options.expectedRevision !== undefined;
    if (!missing || ordered) throw error;
    if (options.mechanism === "tcx") {
      throw new UnsupportedFeatureError(operation, "tcx links", "use mechanism \"netlink\" (clsact + cls_bpf) instead");
    }
    return attachNetlinkTc(program, options);
  }
}
