import { expectProgram, type Program } from "../core/program.js";
import { expectInteger, expectString } from "../sys/argument-checks.js";
import { ProgramType } from "../sys/bpf-constants.js";
import { rawTracepointOpen } from "../sys/bpf.js";
import { SyscallError, UsageError } from "../sys/errors.js";
import { Link } from "./link.js";

/** A program attached to a raw tracepoint (a BPF link). */
export class RawTracepointLink extends Link {
  readonly name: string;

  /** @internal */
  constructor(fd: number, name: string) {
    expectInteger("construct RawTracepointLink", "fd", fd, 0);
    expectString("construct RawTracepointLink", "name", name);
    super(fd, `raw tracepoint ${name}`);
    this.name = name;
  }
}

/**
 * Attaches a RawTracepoint program to the raw tracepoint `name` (the
 * tracepoint's name without its category, e.g. "sys_enter" or
 * "inet_sock_set_state"). The program gets the tracepoint's raw arguments.
 *
 * A BTF-typed raw tracepoint program (`tp_btf/<name>`: type Tracing, loaded
 * with the attach BTF id of `btf_trace_<name>`) attaches to the tracepoint it
 * was loaded for; `name` must be that tracepoint's.
 */
export function attachRawTracepoint(program: Program, name: string): RawTracepointLink {
  expectProgram("attach raw tracepoint", program);
  expectString("attach raw tracepoint", "name", name);
  const operation = `attach raw tracepoint ${name}`;
  if (program.type === ProgramType.Tracing) {
    // The kernel knows the target from the program's attach BTF id, and wants no name.
    return new RawTracepointLink(rawTracepointOpen(null, program.fd.value), name);
  }
  if (program.type !== ProgramType.RawTracepoint && program.type !== ProgramType.RawTracepointWritable) {
    throw new UsageError(operation, `a raw tracepoint program must be of type RawTracepoint (or a tp_btf Tracing program), not ${ProgramType[program.type] ?? program.type}`, "load it with type ProgramType.RawTracepoint");
  }
  if (typeof name !== "string" || !/^[A-Za-z0-9_]+$/.test(name)) {
    throw new UsageError(operation, `${JSON.stringify(name)} is not a raw tracepoint name`, "give the name without its category, e.g. \"sys_enter\"");
  }
  try {
    return new RawTracepointLink(rawTracepointOpen(name, program.fd.value), name);
  } catch (error) {
    if (error instanceof SyscallError && error.code === "ENOENT") {
      throw new UsageError(operation, `there is no raw tracepoint named ${name} on this kernel`,
        "raw tracepoints are the tracepoints under /sys/kernel/tracing/events, named without their category (the kernel's BTF has a btf_trace_<name> type for each)");
    }
    throw error;
  }
}
