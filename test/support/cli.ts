import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const cliPath = fileURLToPath(new URL("../../src/cli/netbpf.js", import.meta.url));

/** Runs the netbpf CLI as a user would, capturing its output. */
export function runCli(args: string[], options: { input?: string; timeout?: number } = {}) {
  const result = spawnSync(process.execPath, [cliPath, ...args], { encoding: "utf8", input: options.input, timeout: options.timeout ?? 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
