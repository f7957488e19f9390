/**
 * perf_event_open for BPF output buffers: one software event of type
 * PERF_COUNT_SW_BPF_OUTPUT per CPU, whose ring bpf_perf_event_output writes to.
 */
import { perfEventOpen, PerfSampleType, PerfSoftwareEvent, PerfType } from "./perf-event.js";

export { perfEventDisable, perfEventEnable } from "./perf-event.js";

export interface PerfBufferOpenOptions {
  cpu: number;
  /** Wake the reader after this many samples (default 1). Ignored when wakeupBytes is set. */
  wakeupEvents?: number;
  /** Wake the reader once this many bytes are waiting (perf's watermark). */
  wakeupBytes?: number;
}

/** Opens a BPF output event on `cpu` for every process; returns its fd. */
export function perfBufferOpen(options: PerfBufferOpenOptions): number {
  const watermark = options.wakeupBytes !== undefined;
  return perfEventOpen(
    {
      type: PerfType.Software,
      config: PerfSoftwareEvent.BpfOutput,
      samplePeriod: 1,
      sampleType: PerfSampleType.Raw,
      watermark,
      wakeupEvents: watermark ? options.wakeupBytes : options.wakeupEvents ?? 1,
    },
    {
      cpu: options.cpu,
      pid: -1,
      operation: `perf_event_open (BPF output event on CPU ${options.cpu})`,
      hint: (code) =>
        code === "EACCES" || code === "EPERM" ? "needs root or CAP_PERFMON (and kernel.perf_event_paranoid allowing CPU-wide events)"
        : code === "ENODEV" || code === "EINVAL" ? `CPU ${options.cpu} may be offline`
        : code === "EMFILE" ? "too many open files: raise the file descriptor limit" : undefined,
    },
  );
}
