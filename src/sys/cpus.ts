import { readFileSync } from "node:fs";

let possible: number | undefined;

/** Parses a kernel CPU list such as "0-3,5,7-8". */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const part of text.trim().split(",")) {
    if (!part) continue;
    const [low, high] = part.split("-").map(Number);
    if (low === undefined || Number.isNaN(low)) throw new Error(`bad CPU list "${text}"`);
    for (let c = low; c <= (high ?? low); c++) cpus.push(c);
  }
  return cpus;
}

/** Number of possible CPUs: the size of every per-CPU map value array. */
export function possibleCpuCount(): number {
  if (possible === undefined) {
    const cpus = parseCpuList(readFileSync("/sys/devices/system/cpu/possible", "utf8"));
    possible = Math.max(...cpus) + 1;
  }
  return possible;
}

export function onlineCpus(): number[] {
  return parseCpuList(readFileSync("/sys/devices/system/cpu/online", "utf8"));
}
