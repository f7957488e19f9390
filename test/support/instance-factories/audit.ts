import type { AcceptedCalls, InstanceFactory } from "./types.js";

export const factories: Record<string, InstanceFactory> = {
};

export const accepted: AcceptedCalls = {
};
