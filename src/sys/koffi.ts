/**
 * The koffi FFI module, loaded straight from its prebuilt native binary where
 * one exists for this platform. koffi's package entry point also loads its
 * download tooling (https, crypto, zlib), about 25 ms of CPU at every start of
 * the CLI for code netbpf never calls; the native module is the same API
 * without the deprecated aliases. Anything unusual (musl, another layout, a
 * version mismatch) falls back to the package's own loader.
 */
import { createRequire } from "node:module";
import type koffiModule from "koffi";

type Koffi = typeof koffiModule;

const require = createRequire(import.meta.url);

function loadKoffi(): Koffi {
  if (process.platform === "linux" && (process.arch === "x64" || process.arch === "arm64")) {
    try {
      const native = require(`koffi/build/koffi/linux_${process.arch}/koffi.node`) as Koffi & { version?: unknown };
      const { version } = require("koffi/package.json") as { version: string };
      if (native.version === version) return native;
    } catch {
      // Not a glibc build, or not where koffi 2.x keeps it: its loader knows.
    }
  }
  return require("koffi") as Koffi;
}

export const koffi: Koffi = loadKoffi();
