import { closeSync, constants, openSync } from "node:fs";
import { expectProgram, type Program } from "../core/program.js";
import { AttachFlag, AttachType, ProgramType } from "../sys/bpf-constants.js";
import { getFdById, linkCreate, programAttach, programDetach } from "../sys/bpf.js";
import { FileDescriptor } from "../sys/file-descriptor.js";
import { SyscallError, UsageError } from "../sys/errors.js";
import { cgroupPath } from "../sys/cgroup.js";
import { Link } from "./link.js";
import { expectInstance, expectInteger, expectObject } from "../sys/argument-checks.js";

/** Friendly names of the cgroup hooks, with the program type each needs. */
export const cgroupHooks = {
  ingress: { attachType: AttachType.CgroupInetIngress, programType: ProgramType.CgroupSkb },
  egress: { attachType: AttachType.CgroupInetEgress, programType: ProgramType.CgroupSkb },
  sock_create: { attachType: AttachType.CgroupInetSockCreate, programType: ProgramType.CgroupSock },
  sock_release: { attachType: AttachType.CgroupInetSockRelease, programType: ProgramType.CgroupSock },
  post_bind4: { attachType: AttachType.CgroupInet4PostBind, programType: ProgramType.CgroupSock },
  post_bind6: { attachType: AttachType.CgroupInet6PostBind, programType: ProgramType.CgroupSock },
  bind4: { attachType: AttachType.CgroupInet4Bind, programType: ProgramType.CgroupSockAddr },
  bind6: { attachType: AttachType.CgroupInet6Bind, programType: ProgramType.CgroupSockAddr },
  connect4: { attachType: AttachType.CgroupInet4Connect, programType: ProgramType.CgroupSockAddr },
  connect6: { attachType: AttachType.CgroupInet6Connect, programType: ProgramType.CgroupSockAddr },
  sendmsg4: { attachType: AttachType.CgroupUdp4Sendmsg, programType: ProgramType.CgroupSockAddr },
  sendmsg6: { attachType: AttachType.CgroupUdp6Sendmsg, programType: ProgramType.CgroupSockAddr },
  recvmsg4: { attachType: AttachType.CgroupUdp4Recvmsg, programType: ProgramType.CgroupSockAddr },
  recvmsg6: { attachType: AttachType.CgroupUdp6Recvmsg, programType: ProgramType.CgroupSockAddr },
  sock_ops: { attachType: AttachType.CgroupSockOps, programType: ProgramType.SockOps },
  getsockopt: { attachType: AttachType.CgroupGetsockopt, programType: ProgramType.CgroupSockopt },
  setsockopt: { attachType: AttachType.CgroupSetsockopt, programType: ProgramType.CgroupSockopt },
  sysctl: { attachType: AttachType.CgroupSysctl, programType: ProgramType.CgroupSysctl },
  device: { attachType: AttachType.CgroupDevice, programType: ProgramType.CgroupDevice },
} as const;

export type CgroupHook = keyof typeof cgroupHooks;

export interface CgroupOptions {
  /** A cgroup v2 directory (absolute, or relative to the cgroup v2 mount) or an open descriptor of one. */
  cgroup: string | number;
  /** A hook name ("ingress", "connect4", "sock_ops", …) or an AttachType. */
  attachType: CgroupHook | AttachType;
  /** "link" (default) or "attach": BPF_PROG_ATTACH with BPF_F_ALLOW_MULTI, for kernels without cgroup links. */
  mechanism?: "link" | "attach";
}

/** A program attached to a cgroup hook. */
export class CgroupLink extends Link {
  readonly attachType: AttachType;
  readonly mechanism: "link" | "attach";
  readonly #cgroupFd: number | undefined;
  readonly #program: FileDescriptor | undefined;

  /** @internal */
  constructor(fd: number | undefined, description: string, attachType: AttachType, cgroupFd?: number, program?: FileDescriptor) {
    expectInteger("construct CgroupLink", "attachType", attachType, 0);
    if (cgroupFd !== undefined) expectInteger("construct CgroupLink", "cgroupFd", cgroupFd, 0);
    if (program !== undefined) expectInstance("construct CgroupLink", "program", program, FileDescriptor);
    super(fd, description);
    this.attachType = attachType;
    this.mechanism = fd === undefined ? "attach" : "link";
    this.#cgroupFd = cgroupFd;
    this.#program = program;
    if (cgroupFd !== undefined) this.owned.add({ close: () => closeSync(cgroupFd) });
    if (program) this.owned.add(program);
  }

  protected override release(): void {
    try {
      programDetach(this.#cgroupFd!, this.#program!.value, this.attachType);
    } catch (error) {
      if (!(error instanceof SyscallError && ["ENOENT", "EBADF"].includes(error.code))) throw error;
    }
  }
}

function resolveHook(value: CgroupHook | AttachType, operation: string): { attachType: AttachType; programType?: ProgramType; label: string } {
  if (typeof value === "string") {
    const hook = (cgroupHooks as Record<string, { attachType: AttachType; programType: ProgramType }>)[value];
    if (!hook) throw new UsageError(operation, `unknown cgroup hook ${JSON.stringify(value)}`, `use one of ${Object.keys(cgroupHooks).join(", ")}`);
    return { ...hook, label: value };
  }
  const entry = Object.entries(cgroupHooks).find(([, h]) => h.attachType === value);
  if (!entry && AttachType[value] === undefined) throw new UsageError(operation, `unknown attach type ${value}`);
  return { attachType: value, programType: entry?.[1].programType, label: entry?.[0] ?? AttachType[value]! };
}

/**
 * Attaches a cgroup program (skb ingress/egress, sock create, connect4/6,
 * sock_ops, …) to a cgroup v2 directory; it runs for every process in that
 * cgroup and its descendants.
 */
export function attachCgroup(program: Program, options: CgroupOptions): CgroupLink {
  expectProgram("attach cgroup", program);
  expectObject("attach cgroup", "the options", options);
  let operation = "attach cgroup program";
  const hook = resolveHook(options.attachType, operation);
  operation = `attach cgroup ${hook.label}`;
  if (hook.programType !== undefined && program.type !== hook.programType) {
    throw new UsageError(operation, `the ${hook.label} hook needs a ${ProgramType[hook.programType]} program, not ${ProgramType[program.type] ?? program.type}`,
      hook.programType === ProgramType.CgroupSockAddr ? `load it with type ProgramType.CgroupSockAddr and expectedAttachType ${AttachType[hook.attachType]}` : undefined);
  }
  let cgroupFd: number;
  let label: string;
  let opened = false;
  if (typeof options.cgroup === "number") {
    cgroupFd = options.cgroup;
    label = `cgroup descriptor ${cgroupFd}`;
  } else {
    const path = cgroupPath(options.cgroup);
    cgroupFd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
    label = path;
    opened = true;
  }
  const description = `cgroup ${hook.label} on ${label}`;
  try {
    if (options.mechanism === "attach") {
      // The detach needs the cgroup and the program: keep our own descriptors of both, so closing the Program does not matter.
      const programId = program.info().id;
      const programFd = getFdById("program", programId);
      if (programFd === undefined) throw new UsageError(operation, `program ${programId} went away`);
      const ownProgram = new FileDescriptor(programFd);
      try {
        programAttach(cgroupFd, program.fd.value, hook.attachType, AttachFlag.AllowMulti);
      } catch (error) {
        ownProgram.close();
        throw error;
      }
      const kept = opened ? cgroupFd : openSync(`/proc/self/fd/${cgroupFd}`, constants.O_RDONLY | constants.O_DIRECTORY);
      opened = false;
      return new CgroupLink(undefined, description, hook.attachType, kept, ownProgram);
    }
    const fd = linkCreate({ programFd: program.fd.value, targetFd: cgroupFd, attachType: hook.attachType }, `${operation} to ${label}`);
    return new CgroupLink(fd, description, hook.attachType);
  } finally {
    if (opened) closeSync(cgroupFd);
  }
}
