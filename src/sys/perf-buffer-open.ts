/**
 * perf_event_open for BPF output buffers: one software event of type
 * PERF_COUNT_SW_BPF_OUTPUT per CPU, whose ring bpf_perf_event_output writes to.
 */
import { SyscallError } from "./errors.js";
import { check, lastErrno, libcIoctl, libcSyscallPointer, syscallNumber } from "./libc.js";

const perfTypeSoftware = 1;
const perfCountSoftwareBpfOutput = 10;
const perfSampleRaw = 1 << 10;
const attributeSize = 128; // PERF_ATTR_SIZE_VER7
const flagWatermark = 1n << 14n;
const perfFlagCloseOnExec = 8;
const ioctlEnable = 0x2400;
const ioctlDisable = 0x2401;

export interface PerfBufferOpenOptions {
  cpu: number;
  /** Wake the reader after this many samples (default 1). Ignored when wakeupBytes is set. */
  wakeupEvents?: number;
  /** Wake the reader once this many bytes are waiting (perf's watermark). */
  wakeupBytes?: number;
}

/** Opens a BPF output event on `cpu` for every process; returns its fd. */
export function perfBufferOpen(options: PerfBufferOpenOptions): number {
  const attribute = Buffer.alloc(attributeSize);
  attribute.writeUInt32LE(perfTypeSoftware, 0);
  attribute.writeUInt32LE(attributeSize, 4);
  attribute.writeBigUInt64LE(BigInt(perfCountSoftwareBpfOutput), 8);
  attribute.writeBigUInt64LE(1n, 16); // sample_period
  attribute.writeBigUInt64LE(BigInt(perfSampleRaw), 24);
  if (options.wakeupBytes !== undefined) {
    attribute.writeBigUInt64LE(flagWatermark, 40);
    attribute.writeUInt32LE(options.wakeupBytes, 48);
  } else {
    attribute.writeUInt32LE(options.wakeupEvents ?? 1, 48);
  }
  const fd = libcSyscallPointer(syscallNumber.perfEventOpen, attribute, -1, options.cpu, -1, perfFlagCloseOnExec);
  if (fd < 0) {
    const errno = lastErrno();
    const error = new SyscallError("perf_event_open", errno);
    const hint = error.code === "EACCES" || error.code === "EPERM"
      ? "needs root or CAP_PERFMON (and kernel.perf_event_paranoid allowing CPU-wide events)"
      : error.code === "ENODEV" || error.code === "EINVAL" ? `CPU ${options.cpu} may be offline` : error.code === "EMFILE" ? "too many open files: raise the file descriptor limit" : undefined;
    throw new SyscallError("perf_event_open", errno, hint, `BPF output event on CPU ${options.cpu}`);
  }
  return fd;
}

export function perfEventEnable(fd: number): void {
  check("enable perf event", libcIoctl(fd, ioctlEnable, 0));
}

export function perfEventDisable(fd: number): void {
  check("disable perf event", libcIoctl(fd, ioctlDisable, 0));
}
