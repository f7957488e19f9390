/**
 * Bundles the CLI (run by `npm run build` after tsc). The published `bin`,
 * dist/src/cli/netbpf.cjs, is a small launcher (src/cli/netbpf.ts): it
 * reads which command a command line names and runs that command's bundle,
 * dist/src/cli/netbpf-<module>.cjs — cli-main.ts, commander and the one
 * command module with everything it imports — or, for `--help`, `--version`
 * and anything unknown, the listing's bundle (netbpf-listing.cjs). The
 * bundles are CommonJS scripts, so the launcher can hand V8 the code it
 * compiled on an earlier run (src/cli/bundle-loader.ts); a start then
 * neither resolves modules nor parses and compiles the functions it runs.
 * dist/src/cli/netbpf.js stays as a one-line ES module that runs the
 * launcher, for `node dist/src/cli/netbpf.js`.
 *
 * The library (dist/src/index.js and the layers) stays tsc's output, one file
 * per module. Packages with native parts or loaded by one command only stay
 * outside the bundles and load from node_modules as before.
 */
import { build, type BuildOptions, type Plugin } from "esbuild";
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { commandTable } from "../src/cli/command-table.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const outputFolder = join(root, "dist/src/cli");
const listing = "listing";

/** One bundle per command module (commands sharing a module share its bundle), and the listing's. */
const modules = [...new Map(commandTable.map((entry) => [entry.module, entry.register])).entries()];
const bundleName = (module: string) => `netbpf-${module}`;

/** Each bundle's entry: a module made up here that runs cli-main.ts with the command's register function. */
const commandEntries: Plugin = {
  name: "netbpf-command-entries",
  setup(plugin) {
    plugin.onResolve({ filter: /^netbpf-entry:/ }, (args) => ({ path: args.path.slice("netbpf-entry:".length), namespace: "netbpf-entry" }));
    plugin.onLoad({ filter: /.*/, namespace: "netbpf-entry" }, (args) => {
      const register = modules.find(([module]) => module === args.path)?.[1];
      const contents = args.path === listing
        ? `import { runCommandLine } from "./cli-main.ts";\nexport const run = () => runCommandLine(undefined);\n`
        : `import { runCommandLine } from "./cli-main.ts";\nimport { ${register} as register } from "./${args.path}.ts";\nexport const run = () => runCommandLine(register);\n`;
      return { contents, loader: "ts", resolveDir: join(root, "src/cli") };
    });
  },
};

/**
 * Node modules whose loading costs milliseconds at every start (crypto about
 * 7 ms of CPU, child_process 6, zlib 4) while a command calls them late or
 * never (commander's child_process runs external subcommands, which netbpf
 * has none of; crypto names a temporary file when a capture is written;
 * fs/promises reads capture files).
 * In the bundles they load when one of their functions is first called:
 * each is replaced by a module of wrappers for its functions (lower-case
 * names; importing anything else from it fails the build).
 */
const lazyBuiltins = ["node:crypto", "node:child_process", "node:zlib", "node:fs/promises"];
const requireHere = createRequire(import.meta.url);

const lazyBuiltinModules: Plugin = {
  name: "netbpf-lazy-builtins",
  setup(plugin) {
    const names = new Map(lazyBuiltins.flatMap((name) => [[name, name], [name.slice("node:".length), name]]));
    const filter = new RegExp(`^(node:)?(${lazyBuiltins.map((name) => name.slice("node:".length)).join("|")})$`);
    plugin.onResolve({ filter }, (args) => {
      // The wrappers' own require of the module stays a plain require.
      if (args.namespace === "netbpf-lazy-builtin") return { path: args.path, external: true };
      const name = names.get(args.path);
      return name === undefined ? undefined : { path: name, namespace: "netbpf-lazy-builtin" };
    });
    plugin.onLoad({ filter: /.*/, namespace: "netbpf-lazy-builtin" }, (args) => {
      const builtin = requireHere(args.path) as Record<string, unknown>;
      const functions = Object.keys(builtin).filter((key) => /^[a-z]/.test(key) && typeof builtin[key] === "function");
      const contents = [
        `let loaded;`,
        `const load = () => (loaded ??= require(${JSON.stringify(args.path)}));`,
        ...functions.map((key) => `export function ${key}(...args) { return load().${key}(...args); }`),
      ].join("\n");
      return { contents, loader: "js", resolveDir: root };
    });
  },
};

const common: BuildOptions & { define: Record<string, string> } = {
  absWorkingDir: root,
  outdir: outputFolder,
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  // ASCII output: the launcher reads the bundles as latin1, the cheapest exact decoding.
  charset: "ascii",
  minifyWhitespace: true,
  minifySyntax: true,
  // No source maps: 15 MB of them for the bundles; a stack trace names the bundle, whose code is tsc's output of src/ (not minified names).
  sourcemap: false,
  logLevel: "warning",
  outExtension: { ".js": ".cjs" },
  // Source written as ES modules asks import.meta.url for its own location; in a CommonJS bundle that is the bundle's.
  define: { "import.meta.url": "netbpfBundleUrl" },
  banner: { js: 'var netbpfBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
  external: ["koffi", "better-sqlite3", "@clickhouse/client", "prom-client", "yaml", "uplot"],
};

for (const file of readdirSync(outputFolder)) if (/^netbpf-.*\.cjs(\.map)?$/.test(file)) rmSync(join(outputFolder, file));

await build({
  ...common,
  entryPoints: [...modules.map(([module]) => ({ in: `netbpf-entry:${module}`, out: bundleName(module) })), { in: `netbpf-entry:${listing}`, out: bundleName(listing) }],
  plugins: [commandEntries, lazyBuiltinModules],
});

const bundles: Record<string, string> = Object.fromEntries([...modules.map(([module]) => [module, `${bundleName(module)}.cjs`]), ["", `${bundleName(listing)}.cjs`]]);
await build({
  ...common,
  entryPoints: { netbpf: "src/cli/netbpf.ts" },
  define: { ...common.define, NETBPF_COMMAND_BUNDLES: JSON.stringify(bundles) },
});

for (const file of [...Object.values(bundles), "netbpf.cjs"]) {
  const text = readFileSync(join(outputFolder, file));
  if (text.some((byte) => byte > 0x7f)) throw new Error(`bundle-cli: ${file} is not ASCII`);
}
// `node dist/src/cli/netbpf.js` still works: an ES module that runs the launcher.
writeFileSync(join(outputFolder, "netbpf.js"), '#!/usr/bin/env node\nimport "./netbpf.cjs";\n');
rmSync(join(outputFolder, "netbpf.js.map"), { force: true });
for (const file of ["netbpf.cjs", "netbpf.js"]) chmodSync(join(outputFolder, file), 0o755);
