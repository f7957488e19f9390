import { expectProgram, type Program } from "../core/program.js";
import { expectInstance, expectObject, expectString } from "../sys/argument-checks.js";
import { AttachType, ProgramType } from "../sys/bpf-constants.js";
import { linkCreate } from "../sys/bpf.js";
import { SyscallError, UsageError } from "../sys/errors.js";
import { FileDescriptor } from "../sys/file-descriptor.js";
import { perfEventDisable, perfEventEnable, perfEventOpen, perfEventSetBpf, PerfType, tracepointId } from "../sys/perf-event.js";
import { Link } from "./link.js";

export interface TracepointOptions {
  /** A value the program reads with bpf_get_attach_cookie (BPF link only). */
  cookie?: bigint;
  /** "link" (default) or "ioctl" (PERF_EVENT_IOC_SET_BPF, used automatically where perf_event links are missing). */
  mechanism?: "link" | "ioctl";
}

/** A program attached to a tracepoint through a perf event. */
export class TracepointLink extends Link {
  readonly category: string;
  readonly name: string;
  /** "link": a BPF perf_event link; "ioctl": PERF_EVENT_IOC_SET_BPF on a kernel without such links. */
  readonly mechanism: "link" | "ioctl";
  readonly #perfEvent: FileDescriptor;

  /** @internal */
  constructor(fd: number | undefined, perfEvent: FileDescriptor, category: string, name: string) {
    expectInstance("construct TracepointLink", "perfEvent", perfEvent, FileDescriptor);
    super(fd, `tracepoint ${category}:${name}`);
    this.category = category;
    this.name = name;
    this.mechanism = fd === undefined ? "ioctl" : "link";
    this.#perfEvent = perfEvent;
    this.owned.add(perfEvent);
  }

  protected override release(): void {
    // The program goes with the perf event, which close() releases after this.
    try {
      perfEventDisable(this.#perfEvent.value);
    } catch {
      // Closing the event detaches the program anyway.
    }
  }
}

/**
 * Attaches a Tracepoint program to `category:name` (as listed under
 * /sys/kernel/tracing/events), e.g. attachTracepoint(p, "sock", "inet_sock_set_state").
 */
export function attachTracepoint(program: Program, category: string, name: string, options: TracepointOptions = {}): TracepointLink {
  expectProgram("attach tracepoint", program);
  expectString("attach tracepoint", "category", category);
  expectString("attach tracepoint", "name", name);
  expectObject("attach tracepoint", "options", options);
  const operation = `attach tracepoint ${category}:${name}`;
  if (program.type !== ProgramType.Tracepoint) {
    throw new UsageError(operation, `a tracepoint program must be of type Tracepoint, not ${ProgramType[program.type] ?? program.type}`, "load it with type ProgramType.Tracepoint");
  }
  if (options.mechanism !== undefined && options.mechanism !== "link" && options.mechanism !== "ioctl") {
    throw new UsageError(operation, `mechanism must be "link" or "ioctl", got ${JSON.stringify(options.mechanism)}`);
  }
  if (options.mechanism === "ioctl" && options.cookie !== undefined) throw new UsageError(operation, "a cookie needs the link mechanism");
  const id = tracepointId(category, name);
  const perfEvent = new FileDescriptor(perfEventOpen({ type: PerfType.Tracepoint, config: id }, { pid: -1, cpu: 0, operation: `open perf event for ${category}:${name}` }));
  try {
    let linkFd: number | undefined;
    if (options.mechanism === "ioctl") {
      perfEventSetBpf(perfEvent.value, program.fd.value);
    } else try {
      linkFd = linkCreate({ programFd: program.fd.value, targetFd: perfEvent.value, attachType: AttachType.PerfEvent, cookie: options.cookie ?? 0n }, operation);
    } catch (error) {
      // Kernels before perf_event links reject the attach type; the ioctl does the same job without a link.
      if (!(error instanceof SyscallError && ["EINVAL", "EOPNOTSUPP", "ENOTSUPP"].includes(error.code)) || options.cookie !== undefined) throw error;
      perfEventSetBpf(perfEvent.value, program.fd.value);
    }
    try {
      perfEventEnable(perfEvent.value);
    } catch (error) {
      if (linkFd !== undefined) new FileDescriptor(linkFd).close();
      throw error;
    }
    return new TracepointLink(linkFd, perfEvent, category, name);
  } catch (error) {
    perfEvent.close();
    throw error;
  }
}
