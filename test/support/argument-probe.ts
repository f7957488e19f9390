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
import { judgeCall, parameterNames, wrongCallArguments, wrongCallLabels, type ExportReport } from "./wrong-calls.js";

export type { CallLabel, ExportReport } from "./wrong-calls.js";

/** Calls `value` (a function, a class, or a static method called on `owner`) with each wrong call and records what it did. */
async function probeCallable(reports: ExportReport[], name: string, value: Function, owner?: Function): Promise<void> {
  const source = Function.prototype.toString.call(value);
  const isClass = /^class\b/.test(source);
  const parameters = parameterNames(source, isClass);
  const report: ExportReport = { name, parameters, allOptional: value.length === 0, calls: {} };
  reports.push(report);
  if (parameters.length === 0) return; // takes no arguments: nothing to validate
  const callable = (owner === undefined || isClass ? value : value.bind(owner)) as (...args: unknown[]) => unknown;
  for (const label of wrongCallLabels(report.allOptional)) report.calls[label] = await judgeCall(callable, isClass, parameters, wrongCallArguments[label]);
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
