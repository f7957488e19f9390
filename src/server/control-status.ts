/**
 * What the control commands installed, for the dashboard: firewall rules
 * with their hit counters, rate limits with the sources they drop most, and
 * load balancers' backends — read from the state folder's pins (nothing is
 * attached or changed). Each part is read on its own: a failure in one is
 * reported in `failures` and leaves the others.
 */
import { LoadBalancer } from "../balancer/load-balancer.js";
import { describeRule, Firewall } from "../firewall/firewall.js";
import { describeLimit, RateLimiter } from "../firewall/rate-limiter.js";
import { StateStore } from "../state/state-store.js";
import { expectInteger, expectObject, expectString } from "../sys/argument-checks.js";

export interface ControlStatus {
  rules: { interface: string; id: number; action: string; direction: string; description: string; packets: number; bytes: number }[];
  limits: { interface: string; id: number; description: string; passed: number; dropped: number; droppedBytes: number }[];
  /** The sources rate limits dropped most. */
  offenders: { interface: string; rule: number; address: string; passed: number; dropped: number }[];
  balancers: { service: string; protocol: string; dropped: number; backends: { endpoint: string; state: string; health: string; packets: number; bytes: number; trackedFlows: number }[] }[];
  /** Part → why it could not be read. */
  failures: Record<string, string>;
}

export function readControlStatus(options: { stateRoot?: string; offenders?: number } = {}): ControlStatus {
  expectObject("read control status", "options", options);
  if (options.stateRoot !== undefined) expectString("read control status", "options.stateRoot", options.stateRoot);
  if (options.offenders !== undefined) expectInteger("read control status", "options.offenders", options.offenders, 0);
  const status: ControlStatus = { rules: [], limits: [], offenders: [], balancers: [], failures: {} };
  const part = (name: string, read: () => void) => {
    try {
      read();
    } catch (error) {
      status.failures[name] = error instanceof Error ? error.message : String(error);
    }
  };
  let store: StateStore | undefined;
  part("state", () => (store = StateStore.open({ root: options.stateRoot })));
  if (!store) return status;
  part("rules", () => {
    for (const firewall of Firewall.installed({ store })) {
      for (const rule of firewall.rules()) {
        status.rules.push({ interface: rule.interface, id: rule.id, action: rule.action, direction: rule.direction, description: describeRule(rule) + (rule.comment ? ` # ${rule.comment}` : ""), packets: Number(rule.packets), bytes: Number(rule.bytes) });
      }
    }
  });
  part("limits", () => {
    for (const limiter of RateLimiter.installed({ store })) {
      for (const rule of limiter.rules()) status.limits.push({ interface: rule.interface, id: rule.id, description: describeLimit(rule), passed: Number(rule.passed), dropped: Number(rule.dropped), droppedBytes: Number(rule.droppedBytes) });
      for (const source of limiter.topSources(options.offenders ?? 10)) {
        if (source.dropped > 0n) status.offenders.push({ interface: source.interface, rule: source.rule, address: source.address, passed: Number(source.passed), dropped: Number(source.dropped) });
      }
    }
  });
  part("balancers", () => {
    for (const balancer of LoadBalancer.list({ stateRoot: options.stateRoot })) {
      const s = balancer.status();
      status.balancers.push({
        service: s.service,
        protocol: s.protocol,
        dropped: Number(s.dropped),
        backends: s.backends.map((b) => ({ endpoint: b.endpoint, state: b.state, health: b.health, packets: Number(b.packets), bytes: Number(b.bytes), trackedFlows: b.trackedFlows })),
      });
    }
  });
  return status;
}
