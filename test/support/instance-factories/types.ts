import type { CallLabel } from "../wrong-calls.js";

/** Makes a fresh, valid instance of one class for the instance probe. */
export type InstanceFactory = () => object | Promise<object>;
/** Wrong-looking calls ("Class#method") that are valid, with the reason. */
export type AcceptedCalls = Record<string, { calls: CallLabel[]; reason: string }>;
