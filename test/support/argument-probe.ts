/**
 * Calls every function and class of the root export, and every static method
 * of those classes, with nonsense arguments and prints, as one JSON object, what each call did. Run by
 * test/root-argument-checks.test.ts in a child process that cannot harm the
 * host: user nobody, an empty network namespace, a temporary working folder.
 * A wrong call that slips past a missing check then fails on a permission or
 * finds no interface — and is reported as unchecked, never done.
 *
 * The process exits by itself once the report is printed, whatever handles a
 * call may have left open; a call that neither returns nor throws within
 * `callTimeout` is reported as hanging.
 */
import * as netbpf from "../../src/index.js";
import { NetbpfError } from "../../src/sys/errors.js";

export type CallLabel = "()" | "(undefined)" | "(42)" | '("x")' | "({})";
export const wrongCallArguments: Record<CallLabel, unknown[]> = { "()": [], "(undefined)": [undefined], "(42)": [42], '("x")': ["x"], "({})": [{}] };

/** What one wrong call did: refused with a NetbpfError naming a parameter, returned, or failed otherwise. */
export type CallOutcome = { kind: "checked" } | { kind: "returned" } | { kind: "unchecked"; error: string };

export interface ExportReport {
  name: string;
  parameters: string[];
  /** Every parameter has a default or is optional (`length` 0): `()` is a valid call. */
  allOptional: boolean;
  calls: Partial<Record<CallLabel, CallOutcome>>;
}

const callTimeout = 3_000;

function parameterNames(source: string, isClass: boolean): string[] {
  const match = isClass ? /constructor\s*\(([^)]*)\)/.exec(source) : /^[^(]*\(([^)]*)\)/.exec(source);
  if (match === null) return [];
  return match[1]!.split(",").map((part) => /[A-Za-z_$][\w$]*/.exec(part.replace(/\/\*.*?\*\//g, ""))?.[0] ?? "").filter((name) => name !== "");
}

async function settle(result: unknown): Promise<void> {
  if (result instanceof Promise) result = await result;
  // An async generator checks its arguments on the first next().
  if (result !== null && typeof result === "object" && Object.prototype.toString.call(result) === "[object AsyncGenerator]") {
    const generator = result as AsyncGenerator<unknown>;
    try { await generator.next(); } finally { await generator.return(undefined); }
  }
  if (result !== null && typeof result === "object" && "close" in result && typeof result.close === "function") await (result.close as () => unknown)();
}

async function call(value: (...args: unknown[]) => unknown, isClass: boolean, parameters: string[], args: unknown[]): Promise<CallOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<CallOutcome>((resolve) => { timer = setTimeout(() => resolve({ kind: "unchecked", error: `neither returned nor threw within ${callTimeout} ms` }), callTimeout); });
  const attempt = (async (): Promise<CallOutcome> => {
    try {
      await settle(isClass ? Reflect.construct(value, args) : value(...args));
      return { kind: "returned" };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (error instanceof NetbpfError && parameters.some((name) => message.includes(name))) return { kind: "checked" };
      return { kind: "unchecked", error: `${(error as Error)?.constructor?.name}: ${message.slice(0, 160)}` };
    }
  })();
  try { return await Promise.race([attempt, hang]); } finally { clearTimeout(timer); }
}

/** Calls `value` (a function, a class, or a static method called on `owner`) with each wrong call and records what it did. */
async function probeCallable(reports: ExportReport[], name: string, value: Function, owner?: Function): Promise<void> {
  const source = Function.prototype.toString.call(value);
  const isClass = /^class\b/.test(source);
  const parameters = parameterNames(source, isClass);
  const report: ExportReport = { name, parameters, allOptional: value.length === 0, calls: {} };
  reports.push(report);
  if (parameters.length === 0) return; // takes no arguments: nothing to validate
  const callable = (owner === undefined || isClass ? value : value.bind(owner)) as (...args: unknown[]) => unknown;
  const labels = (report.allOptional ? ["(42)", '("x")'] : Object.keys(wrongCallArguments)) as CallLabel[];
  for (const label of labels) report.calls[label] = await call(callable, isClass, parameters, wrongCallArguments[label]);
}

/** The own static methods of a class (not getters, not inherited ones), by name. */
function staticMethods(value: Function): [string, Function][] {
  return Object.getOwnPropertyNames(value)
    .filter((key) => key !== "length" && key !== "name" && key !== "prototype")
    .map((key) => [key, Object.getOwnPropertyDescriptor(value, key)!.value] as [string, unknown])
    .filter((entry): entry is [string, Function] => typeof entry[1] === "function")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Every root export that is a function or class, then the static methods of each class, reported as "Class.method". */
async function probeRootExports(): Promise<ExportReport[]> {
  const reports: ExportReport[] = [];
  for (const [name, value] of Object.entries(netbpf).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (typeof value !== "function") continue; // constants, enums, tables
    if (value.prototype instanceof Error) continue; // error classes
    await probeCallable(reports, name, value);
    if (!/^class\b/.test(Function.prototype.toString.call(value))) continue;
    for (const [key, method] of staticMethods(value)) await probeCallable(reports, `${name}.${key}`, method, value);
  }
  return reports;
}

const reports = await probeRootExports();
process.stdout.write(`${JSON.stringify(reports)}\n`, () => process.exit(0));
