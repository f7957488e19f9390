import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

/** What tcpdump selects from a capture whose packet i has timestamp i seconds: indices, or "error". */
export type TcpdumpResult = number[] | "error";

export async function tcpdumpAvailable(): Promise<boolean> {
  try {
    await run("tcpdump", ["--version"]);
    return true;
  } catch {
    return false;
  }
}

/** Runs `tcpdump -r file -tt -nn -q EXPR` and reads the selected packet indices from the timestamps. */
export async function tcpdumpSelect(file: string, expression: string): Promise<TcpdumpResult> {
  try {
    const { stdout } = await run("tcpdump", ["-r", file, "-tt", "-nn", "-q", "--", expression], { maxBuffer: 64 * 1024 * 1024 });
    const indices: number[] = [];
    for (const line of stdout.split("\n")) {
      const match = /^(\d+)\.\d+ /.exec(line);
      if (match) indices.push(Number(match[1]));
    }
    return indices;
  } catch {
    return "error";
  }
}

/** Maps over items with at most `limit` promises in flight. */
export async function mapLimit<T, R>(items: T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
