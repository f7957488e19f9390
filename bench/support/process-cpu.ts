/** CPU time of other processes, for the benches that measure what a tool costs. */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

const clockTicks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/**
 * CPU time of a process: the sum of its threads' run time from
 * /proc/PID/task/TID/schedstat (nanoseconds), far finer than the clock ticks
 * of /proc/PID/stat (10 ms steps); /proc/PID/stat when schedstat is missing.
 */
export function cpuSeconds(pid: number): number {
  try {
    let nanoseconds = 0;
    for (const thread of readdirSync(`/proc/${pid}/task`)) {
      try {
        nanoseconds += Number(readFileSync(`/proc/${pid}/task/${thread}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // the thread ended meanwhile
      }
    }
    if (nanoseconds > 0) return nanoseconds / 1e9;
  } catch {
    // no schedstat: fall back to clock ticks
  }
  const { user, system } = userAndSystemSeconds(pid);
  return user + system;
}

/** User and system CPU from /proc/PID/stat (clock ticks: 10 ms steps). */
export function userAndSystemSeconds(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return { user: Number(fields[11]) / clockTicks, system: Number(fields[12]) / clockTicks };
}
