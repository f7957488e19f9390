/** perf_event_open(2), its attribute struct, its ioctls, and tracefs tracepoint ids. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { argumentError, expectBoolean, expectFunction, expectInteger, expectObject, expectString } from "./argument-checks.js";
import { hasCapability, NetbpfError, permissionHint, SyscallError, UsageError } from "./errors.js";
import { check, lastErrno, libcIoctl, libcSyscallPointer, syscallNumber } from "./libc.js";
import { tracefsPath } from "./mounts.js";


export const PerfType = { Hardware: 0, Software: 1, Tracepoint: 2, HardwareCache: 3, Raw: 4, Breakpoint: 5 } as const;
export const PerfSoftwareEvent = { CpuClock: 0, TaskClock: 1, PageFaults: 2, ContextSwitches: 3, CpuMigrations: 4, Dummy: 9, BpfOutput: 10 } as const;
export const PerfSampleType = { Ip: 1 << 0, Tid: 1 << 1, Time: 1 << 2, Cpu: 1 << 7, Raw: 1 << 10 } as const;
export const PerfIoctl = { Enable: 0x2400, Disable: 0x2401, SetBpf: 0x40042408 } as const;
const perfFlagCloseOnExec = 8;

/** struct perf_event_attr, the fields netbpf uses. */
export interface PerfEventAttributes {
  type: number;
  config: bigint | number;
  /** sample_period (or sample_freq with `frequency`). */
  samplePeriod?: bigint | number;
  sampleType?: bigint | number;
  readFormat?: bigint | number;
  /** Start disabled (enable with PERF_EVENT_IOC_ENABLE). */
  disabled?: boolean;
  frequency?: boolean;
  watermark?: boolean;
  /** wakeup_events (or wakeup_watermark in bytes with `watermark`). */
  wakeupEvents?: number;
  config1?: bigint | number;
  config2?: bigint | number;
}

const attributeSize = 136;

const encodeOperation = "encode perf event attributes";
const maximumUnsigned64 = (1n << 64n) - 1n;

/** A u64 field: a bigint or a safe integer, from 0 to 2^64 - 1; undefined when optional. */
function expectUnsigned64(name: string, value: unknown, optional = true): bigint {
  if (value === undefined && optional) return 0n;
  if (typeof value === "bigint" ? value < 0n || value > maximumUnsigned64 : !(Number.isSafeInteger(value) && (value as number) >= 0)) {
    throw argumentError(encodeOperation, name, "an integer (number or bigint) from 0 to 2^64 - 1", value);
  }
  return BigInt(value as bigint | number);
}

/** Encodes a perf_event_attr. */
export function perfEventAttribute(attributes: PerfEventAttributes): Buffer {
  expectObject(encodeOperation, "attributes", attributes);
  const type = expectInteger(encodeOperation, "attributes.type", attributes.type, 0, 0xffff_ffff);
  const config = expectUnsigned64("attributes.config", attributes.config, false);
  const samplePeriod = expectUnsigned64("attributes.samplePeriod", attributes.samplePeriod);
  const sampleType = expectUnsigned64("attributes.sampleType", attributes.sampleType);
  const readFormat = expectUnsigned64("attributes.readFormat", attributes.readFormat);
  const config1 = expectUnsigned64("attributes.config1", attributes.config1);
  const config2 = expectUnsigned64("attributes.config2", attributes.config2);
  const wakeupEvents = attributes.wakeupEvents === undefined ? 0 : expectInteger(encodeOperation, "attributes.wakeupEvents", attributes.wakeupEvents, 0, 0xffff_ffff);
  const b = Buffer.alloc(attributeSize);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(attributeSize, 4);
  b.writeBigUInt64LE(config, 8);
  b.writeBigUInt64LE(samplePeriod, 16);
  b.writeBigUInt64LE(sampleType, 24);
  b.writeBigUInt64LE(readFormat, 32);
  let flags = 0n;
  if (expectBoolean(encodeOperation, "attributes.disabled", attributes.disabled, true)) flags |= 1n << 0n;
  if (expectBoolean(encodeOperation, "attributes.frequency", attributes.frequency, true)) flags |= 1n << 10n;
  if (expectBoolean(encodeOperation, "attributes.watermark", attributes.watermark, true)) flags |= 1n << 14n;
  b.writeBigUInt64LE(flags, 40);
  b.writeUInt32LE(wakeupEvents, 48);
  b.writeBigUInt64LE(config1, 56);
  b.writeBigUInt64LE(config2, 64);
  return b;
}

export interface PerfEventOpenOptions {
  /** Process to watch; -1 (default) for every process on `cpu`. */
  pid?: number;
  /** CPU to watch; -1 for any CPU of `pid`. Default 0. */
  cpu?: number;
  groupFd?: number;
  operation?: string;
  /** Hint for a failure with this errno code, overriding the defaults. */
  hint?: (code: string) => string | undefined;
}

/** perf_event_open(2): returns the new event's file descriptor (close-on-exec). */
export function perfEventOpen(attributes: PerfEventAttributes, options: PerfEventOpenOptions = {}): number {
  expectObject("perf_event_open", "options", options);
  const operation = options.operation === undefined ? "perf_event_open" : expectString("perf_event_open", "options.operation", options.operation);
  const pid = expectInteger(operation, "options.pid", options.pid ?? -1, -1, 0x7fff_ffff);
  const cpu = expectInteger(operation, "options.cpu", options.cpu ?? 0, -1, 0x7fff_ffff);
  const groupFd = expectInteger(operation, "options.groupFd", options.groupFd ?? -1, -1, 0x7fff_ffff);
  if (options.hint !== undefined) expectFunction(operation, "options.hint", options.hint);
  if (pid === -1 && cpu === -1) throw new UsageError(operation, "options.pid and options.cpu cannot both be -1", "watch one process on any CPU, or every process on one CPU");
  const attr = perfEventAttribute(attributes);
  const fd = libcSyscallPointer(syscallNumber.perfEventOpen, attr, pid, cpu, groupFd, perfFlagCloseOnExec);
  if (fd < 0) {
    const errno = lastErrno();
    const code = new SyscallError(operation, errno).code;
    const hint = options.hint?.(code) ?? (code === "EACCES" || code === "EPERM"
      ? permissionHint(["CAP_PERFMON"]) + (hasCapability("CAP_PERFMON") === false ? " (or lower /proc/sys/kernel/perf_event_paranoid)" : "")
      : code === "ENOENT" || code === "ENODEV" ? "this kernel has no such perf event" : code === "ENOSYS" ? "this kernel has no perf events (CONFIG_PERF_EVENTS)" : undefined);
    throw new SyscallError(operation, errno, hint);
  }
  return fd;
}

export function perfEventEnable(fd: number): void {
  expectInteger("enable perf event", "fd", fd, 0);
  check("enable perf event", libcIoctl(fd, PerfIoctl.Enable, 0));
}

export function perfEventDisable(fd: number): void {
  expectInteger("disable perf event", "fd", fd, 0);
  check("disable perf event", libcIoctl(fd, PerfIoctl.Disable, 0));
}

/** Attaches a BPF program to a tracepoint/kprobe perf event the old way (no link). */
export function perfEventSetBpf(fd: number, programFd: number): void {
  check("attach program to perf event", libcIoctl(fd, PerfIoctl.SetBpf, programFd));
}

export { tracefsPath };

/** The id perf_event_open needs for tracepoint `category:name`, read from tracefs. */
export function tracepointId(category: string, name: string): number {
  expectString("find tracepoint", "category", category);
  expectString("find tracepoint", "name", name);
  const valid = /^[A-Za-z0-9_.-]+$/;
  if (!valid.test(category) || !valid.test(name)) {
    throw new UsageError("find tracepoint", `"${category}:${name}" is not a tracepoint name`, "tracepoints are named category:name, e.g. sock:inet_sock_set_state");
  }
  const root = tracefsPath();
  const path = join(root, "events", category, name, "id");
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new UsageError("find tracepoint", `there is no tracepoint ${category}:${name} on this kernel`,
        `the available ones are listed under ${join(root, "events")} (e.g. ls ${join(root, "events", category)})`);
    }
    throw new NetbpfError("find tracepoint", `cannot read ${path}: ${(error as Error).message}`, "reading tracefs needs root");
  }
  const id = Number.parseInt(text.trim(), 10);
  if (!Number.isInteger(id)) throw new NetbpfError("find tracepoint", `unexpected content in ${path}: ${JSON.stringify(text)}`);
  return id;
}
