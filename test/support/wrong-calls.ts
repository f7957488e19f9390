/**
 * What the argument probes share (test/support/argument-probe.ts for root
 * functions, classes and static methods; test/support/instance-probe.ts for
 * the public methods of instances): the five wrong calls, how one call is
 * judged, and the report shape.
 */
import assert from "node:assert/strict";
import { NetbpfError } from "../../src/sys/netbpf-error.js";

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

/** The parameter names of a function, method or class constructor, from its source. */
export function parameterNames(source: string, isClass: boolean): string[] {
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

/** Makes one call (a construction when `isClass`) and judges what it did; a call that neither returns nor throws in time is unchecked. */
export async function judgeCall(value: (...args: unknown[]) => unknown, isClass: boolean, parameters: string[], args: unknown[]): Promise<CallOutcome> {
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

/** The labels of the wrong calls for a callable: only those with arguments when `()` is valid. */
export function wrongCallLabels(allOptional: boolean): CallLabel[] {
  return (allOptional ? ["(42)", '("x")'] : Object.keys(wrongCallArguments)) as CallLabel[];
}

/**
 * Judges a probe's reports: every wrong call must be refused properly unless
 * `accepted` lists it as valid; a name on `notYetChecked` may still fail, and
 * must fail (the list only shrinks). Returns how many wrong calls were
 * refused properly. NETBPF_ARGUMENT_REPORT=1 prints what is still unchecked.
 */
export function assertWrongCallsRefused(reports: ExportReport[], accepted: Record<string, { calls: CallLabel[] }>, notYetChecked: ReadonlySet<string>, what: string): number {
  const silent: string[] = [];
  const unchecked = new Map<string, string[]>();
  let checkedCalls = 0;
  for (const entry of reports) {
    for (const [label, outcome] of Object.entries(entry.calls) as [CallLabel, CallOutcome][]) {
      if (accepted[entry.name]?.calls.includes(label)) continue;
      if (outcome.kind === "checked") { checkedCalls++; continue; }
      const result = outcome.kind === "returned" ? "returned" : outcome.error;
      if (outcome.kind === "returned" && !notYetChecked.has(entry.name)) silent.push(`${entry.name}${label}`);
      else unchecked.set(entry.name, [...(unchecked.get(entry.name) ?? []), `${label} → ${result}`]);
    }
  }
  if (process.env.NETBPF_ARGUMENT_REPORT) console.log(`${checkedCalls} wrong calls refused properly; still unchecked:`, JSON.stringify(Object.fromEntries(unchecked), null, 1), "silent:", JSON.stringify(silent, null, 1));
  assert.deepEqual(silent, [], "these calls accepted nonsense silently");
  const newlyUnchecked = [...unchecked].filter(([name]) => !notYetChecked.has(name));
  assert.deepEqual(newlyUnchecked, [], `these ${what} throw something other than a NetbpfError naming the argument`);
  const nowChecked = [...notYetChecked].filter((name) => !unchecked.has(name));
  assert.deepEqual(nowChecked, [], "these now check their arguments: remove them from notYetChecked");
  return checkedCalls;
}
