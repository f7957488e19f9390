/**
 * Calls every public method (with parameters) of an instance of every root
 * class with nonsense arguments and prints, as one JSON object, what each
 * call did ("Class#method"). Run by test/instance-argument-checks.test.ts in
 * a child process that cannot reach the host: an empty network namespace
 * (only its own `lo`), a private mount namespace with a bpffs of its own, and
 * a temporary working folder. It runs as root because most instances are
 * kernel objects (maps, programs, links, readers) that user nobody cannot
 * make; a call that slips past a missing check acts on those objects only.
 *
 * Public methods are those the compiled declarations (dist/src/**\/*.d.ts)
 * list without `private`, `protected` or `static`. Each wrong call gets a
 * fresh instance from the class's factory (test/support/instance-factories/),
 * closed afterwards. The process exits once the report is printed.
 *
 * By hand (prints each method's outcome per wrong call):
 *   NETBPF_PROBE_CLASSES=BpfMap,Program unshare --net --mount --propagation private \
 *     sh -c 'ip link set lo up && mount -t bpf bpf /sys/fs/bpf && cd "$(mktemp -d)" && exec node "$0"' \
 *     "$PWD/dist/test/support/instance-probe.js"
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as netbpf from "../../src/index.js";
import { instanceFactories } from "./instance-factories/index.js";
import { judgeCall, parameterNames, wrongCallArguments, wrongCallLabels, type ExportReport } from "./wrong-calls.js";

export interface InstanceReport {
  /** Classes with public methods that take arguments but no factory to make an instance. */
  withoutFactory: string[];
  /** Factories that failed to make an instance, with the error. */
  factoryFailures: Record<string, string>;
  methods: ExportReport[];
}

/** Public instance methods by class name, from every declaration file under `root`. */
export function publicMethodsByClass(root: string): Map<string, Set<string>> {
  const methods = new Map<string, Set<string>>();
  const visit = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) visit(path);
      else if (entry.name.endsWith(".d.ts")) {
        const text = readFileSync(path, "utf8");
        for (const match of text.matchAll(/^(?:export )?declare (?:abstract )?class (\w+)[^\n]*\{\n([\s\S]*?)^\}/gm)) {
          const names = methods.get(match[1]!) ?? new Set<string>();
          for (const member of match[2]!.matchAll(/^ {4}(?!private |protected |static |readonly |get |set |abstract )(\w+)(?:<[^\n]*?>)?\(/gm)) names.add(member[1]!);
          methods.set(match[1]!, names);
        }
      }
    }
  };
  visit(root);
  return methods;
}

/** The public methods of a class with their functions, its own and inherited ones (the nearest definition wins). */
function methodsOf(value: Function, publicMethods: Map<string, Set<string>>): Map<string, Function> {
  const found = new Map<string, Function>();
  for (let prototype = value.prototype as object | null; prototype !== null && prototype !== Object.prototype; prototype = Object.getPrototypeOf(prototype)) {
    const declared = publicMethods.get((prototype as { constructor: Function }).constructor.name) ?? new Set<string>();
    for (const key of Object.getOwnPropertyNames(prototype)) {
      const method = Object.getOwnPropertyDescriptor(prototype, key)!.value as unknown;
      if (key !== "constructor" && typeof method === "function" && declared.has(key) && !found.has(key)) found.set(key, method);
    }
  }
  return found;
}

async function dispose(instance: object): Promise<void> {
  const closable = instance as { close?: () => unknown; uninstall?: () => unknown; [Symbol.dispose]?: () => void; [Symbol.asyncDispose]?: () => Promise<void> };
  try {
    if (typeof closable.close === "function") await closable.close();
    else if (typeof closable[Symbol.asyncDispose] === "function") await closable[Symbol.asyncDispose]!();
    else if (typeof closable[Symbol.dispose] === "function") closable[Symbol.dispose]!();
    else if (typeof closable.uninstall === "function") await closable.uninstall();
  } catch { /* a wrong call may have left it half closed */ }
}

async function probeInstances(): Promise<InstanceReport> {
  const publicMethods = publicMethodsByClass(fileURLToPath(new URL("../../src/", import.meta.url)));
  const report: InstanceReport = { withoutFactory: [], factoryFailures: {}, methods: [] };
  // NETBPF_PROBE_CLASSES=A,B narrows a manual run to those classes (the test never sets it).
  const only = process.env.NETBPF_PROBE_CLASSES?.split(",").filter((name) => name !== "");
  for (const [name, value] of Object.entries(netbpf).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (typeof value !== "function" || !/^class\b/.test(Function.prototype.toString.call(value))) continue;
    if (value.prototype instanceof Error) continue;
    if (only !== undefined && !only.includes(name)) continue;
    const methods = [...methodsOf(value, publicMethods)]
      .map(([key, method]) => ({ key, method, parameters: parameterNames(Function.prototype.toString.call(method), false) }))
      .filter((entry) => entry.parameters.length > 0)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    if (methods.length === 0) continue;
    const factory = instanceFactories[name];
    if (factory === undefined) { report.withoutFactory.push(name); continue; }
    try { await dispose(await factory()); } catch (error) {
      report.factoryFailures[name] = `${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`;
      continue;
    }
    for (const { key, method, parameters } of methods) {
      const entry: ExportReport = { name: `${name}#${key}`, parameters, allOptional: method.length === 0, calls: {} };
      report.methods.push(entry);
      for (const label of wrongCallLabels(entry.allOptional)) {
        const instance = await factory();
        try {
          entry.calls[label] = await judgeCall(method.bind(instance) as (...args: unknown[]) => unknown, false, parameters, wrongCallArguments[label]);
        } finally {
          await dispose(instance);
        }
      }
    }
  }
  return report;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const report = await probeInstances();
  process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
}
