/**
 * Bundles the CLI (run by `npm run build` after tsc): dist/src/cli/netbpf.js,
 * the published `bin`, becomes one file holding commander and everything
 * `netbpf --help` needs, plus one chunk per command's modules next to it
 * (dist/src/cli/netbpf-chunk-*.js), still imported on demand by
 * command-table.ts. Node then compiles a handful of files at start-up instead
 * of resolving and compiling some 80 modules: `--help`, `capture` and `tcp`
 * start faster (bench/capture-startup.ts, bench/tcp-watch.ts).
 *
 * The library (dist/src/index.js and the layers) stays tsc's output, one file
 * per module. Packages with native parts or loaded by one command only stay
 * outside the bundle and load from node_modules as before.
 */
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));

await build({
  absWorkingDir: root,
  entryPoints: { netbpf: "src/cli/netbpf.ts" },
  outdir: "dist/src/cli",
  chunkNames: "netbpf-chunk-[hash]",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: true,
  logLevel: "warning",
  external: ["koffi", "better-sqlite3", "@clickhouse/client", "prom-client", "yaml", "uplot"],
  // commander is CommonJS: its require() calls need a require function in an ES module.
  banner: { js: 'import { createRequire as netbpfCreateRequire } from "node:module"; const require = netbpfCreateRequire(import.meta.url);' },
  allowOverwrite: true,
});
