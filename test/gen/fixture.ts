import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

/** test/fixtures/gen in the source tree (tests run from dist/test/…). */
export const genFixtureDirectory = fileURLToPath(new URL("../../../test/fixtures/gen/", import.meta.url));
export const genObject = join(genFixtureDirectory, "gen.o");
/** The built library, as generated modules import it in tests. */
export const libraryEntry = fileURLToPath(new URL("../../src/index.js", import.meta.url));
const repositoryRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** A temporary folder that is an ES module package, with gen.o copied in. */
export function makeWorkspace(): { directory: string; remove(): void } {
  const directory = mkdtempSync(join(tmpdir(), "nb-gen-"));
  writeFileSync(join(directory, "package.json"), JSON.stringify({ type: "module" }));
  copyFileSync(genObject, join(directory, "gen.o"));
  return { directory, remove: () => rmSync(directory, { recursive: true, force: true }) };
}

export const compilerOptions: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true,
  // The strictest settings users may have: generated code must pass them too.
  noUnusedLocals: true,
  noUnusedParameters: true,
  exactOptionalPropertyTypes: true,
  noImplicitReturns: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  noPropertyAccessFromIndexSignature: true,
  skipLibCheck: true,
  types: ["node"],
  typeRoots: [join(repositoryRoot, "node_modules/@types")],
  lib: ["lib.es2023.d.ts", "lib.esnext.disposable.d.ts"],
};

/** Type-checks files with the typescript API; returns the diagnostics as text (empty when clean). */
let previous: { emit: boolean; program: ts.Program } | undefined;

export function typeCheck(files: string[], emit = false): string[] {
  // Reusing the previous program keeps the parsed lib and @types/node files: seconds per call saved.
  const oldProgram = previous?.emit === emit ? previous.program : undefined;
  const program = ts.createProgram({ rootNames: files, options: { ...compilerOptions, noEmit: !emit }, ...(oldProgram ? { oldProgram } : {}) });
  previous = { emit, program };
  const diagnostics = [...ts.getPreEmitDiagnostics(program)];
  if (emit && diagnostics.length === 0) diagnostics.push(...program.emit().diagnostics);
  return diagnostics.map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    if (!d.file || d.start === undefined) return text;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${d.file.fileName}:${line + 1}:${character + 1}: ${text}`;
  });
}
