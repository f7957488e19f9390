/**
 * The dashboard page's files, all served from the installed package (no
 * CDN: the page works offline): the page itself (assets/dashboard/ in the
 * package), the shared unit formatting (this folder's byte-units.js, built
 * from src/server/byte-units.ts) and uPlot from its npm package (a bundled
 * dependency of netbpf). Only these names are served; files are read once.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

export interface DashboardAsset {
  contentType: string;
  body: Buffer;
}

const pageFolder = new URL("../../../assets/dashboard/", import.meta.url);

/** URL path under /assets/ → where the file is. */
function assetFiles(): Record<string, string> {
  const require = createRequire(import.meta.url);
  return {
    "index.html": fileURLToPath(new URL("index.html", pageFolder)),
    "dashboard.css": fileURLToPath(new URL("dashboard.css", pageFolder)),
    "dashboard.js": fileURLToPath(new URL("dashboard.js", pageFolder)),
    // "../server/": this module may run from the CLI bundle in dist/src/cli (scripts/bundle-cli.ts).
    "byte-units.js": fileURLToPath(new URL("../server/byte-units.js", import.meta.url)),
    "uPlot.iife.min.js": require.resolve("uplot/dist/uPlot.iife.min.js"),
    "uPlot.min.css": require.resolve("uplot/dist/uPlot.min.css"),
  };
}

const contentTypes: Record<string, string> = { html: "text/html; charset=utf-8", css: "text/css; charset=utf-8", js: "text/javascript; charset=utf-8" };

export class DashboardAssets {
  readonly #files: Record<string, string>;
  readonly #cache = new Map<string, DashboardAsset>();

  constructor() {
    this.#files = assetFiles();
  }

  /** Names served under /assets/ (index.html is served as /). */
  get names(): string[] {
    return Object.keys(this.#files);
  }

  /** An asset by name, or undefined for any other name. */
  get(name: string): DashboardAsset | undefined {
    if (!Object.hasOwn(this.#files, name)) return undefined;
    let asset = this.#cache.get(name);
    if (!asset) {
      asset = { contentType: contentTypes[name.split(".").pop()!] ?? "application/octet-stream", body: readFileSync(this.#files[name]!) };
      this.#cache.set(name, asset);
    }
    return asset;
  }
}
