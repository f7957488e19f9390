/**
 * One factory per root class with public methods that take arguments: each
 * makes a fresh, valid instance for test/support/instance-probe.ts (run as
 * root in an empty network namespace with a private bpffs, in a temporary
 * working folder). Grouped by area, one file per group, each with the calls
 * that look wrong but are valid for its methods (`accepted`).
 */
import * as audit from "./audit.js";
import * as capture from "./capture.js";
import * as code from "./code.js";
import * as control from "./control.js";
import * as kernel from "./kernel.js";
import type { AcceptedCalls, InstanceFactory } from "./types.js";

export type { AcceptedCalls, InstanceFactory } from "./types.js";

const groups = [audit, capture, code, control, kernel];

export const instanceFactories: Record<string, InstanceFactory> = Object.assign({}, ...groups.map((group) => group.factories));
export const acceptedInstanceCalls: AcceptedCalls = Object.assign({}, ...groups.map((group) => group.accepted));
