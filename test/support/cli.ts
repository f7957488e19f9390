import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const cliPath = fileURLToPath(new URL("../../src/cli/netbpf.cjs", import.meta.url));

/** Runs the netbpf CLI as a user would, capturing its output. */
export function runCli(args: string[], options: { input?: string; timeout?: number } = {}) {
  const result = spawnSync(process.execPath, [cliPath, ...args], { encoding: "utf8", input: options.input, timeout: options.timeout ?? 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** setpriv arguments that run a command as user and group 65534 (nobody), without supplementary groups. */
export const asNobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];

let nobodyCheckout: string | undefined;
const checkout = join(dirname(cliPath), "..", "..", "..");

function placeForNobody(path: string): void {
  mkdirSync(dirname(join(nobodyCheckout!, path)), { recursive: true });
  const linked = spawnSync("cp", ["-al", join(checkout, path), join(nobodyCheckout!, path)]);
  if (linked.status !== 0) cpSync(join(checkout, path), join(nobodyCheckout!, path), { recursive: true });
}

/**
 * The path of a copy of a built file (relative to the checkout, e.g.
 * `dist/src/cli/netbpf.js`) that user nobody can run: the checkout itself may
 * sit below a folder nobody cannot enter (a home directory). The copy —
 * dist/src, package.json, the runtime dependencies and the files asked for,
 * hard-linked where the file system allows — lives in a world-readable
 * temporary folder removed when the test process exits.
 */
export function pathForNobody(path: string): string {
  if (nobodyCheckout === undefined) {
    nobodyCheckout = mkdtempSync(join(tmpdir(), "nb-nobody-cli-"));
    const copy = nobodyCheckout;
    process.once("exit", () => rmSync(copy, { recursive: true, force: true }));
    chmodSync(copy, 0o755);
    placeForNobody("package.json");
    placeForNobody(join("dist", "src"));
    const wanted = [...Object.keys(JSON.parse(readFileSync(join(checkout, "package.json"), "utf8")).dependencies ?? {})];
    const placed = new Set<string>();
    while (wanted.length > 0) {
      const name = wanted.pop()!;
      const folder = join("node_modules", name);
      if (placed.has(name) || !existsSync(join(checkout, folder))) continue;
      placed.add(name);
      placeForNobody(folder);
      wanted.push(...Object.keys(JSON.parse(readFileSync(join(checkout, folder, "package.json"), "utf8")).dependencies ?? {}));
    }
  }
  if (!existsSync(join(nobodyCheckout, path))) placeForNobody(path);
  return join(nobodyCheckout, path);
}

/** The path of the built CLI in the copy user nobody can run (see pathForNobody). */
export function cliPathForNobody(): string {
  return pathForNobody(join("dist", "src", "cli", "netbpf.cjs"));
}

/** Runs the netbpf CLI as user nobody (see cliPathForNobody), capturing its output. */
export function runCliAsNobody(args: string[], options: { setpriv?: string[]; timeout?: number } = {}) {
  const result = spawnSync("setpriv", [...asNobody, ...(options.setpriv ?? []), process.execPath, cliPathForNobody(), ...args], { encoding: "utf8", timeout: options.timeout ?? 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
