/** Runs every benchmark in this folder, each in its own process, and prints their results. */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const benches = readdirSync(here).filter((f) => f.endsWith(".js") && f !== "run.js" && (only.length === 0 || only.some((o) => f.startsWith(o))));
let failed = 0;
for (const file of benches.sort()) {
  process.stderr.write(`# ${file}\n`);
  const result = spawnSync(process.execPath, ["--expose-gc", join(here, file)], { stdio: "inherit" });
  if (result.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
