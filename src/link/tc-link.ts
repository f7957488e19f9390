import { Link } from "./link.js";
import { expectOneOf } from "../sys/argument-checks.js";

export type TcDirection = "ingress" | "egress";
export type TcMechanism = "tcx" | "netlink";

/** A program attached to an interface's tc ingress or egress hook. */
export class TcLink extends Link {
  /** tcx: a kernel BPF link; netlink: a cls_bpf filter on a clsact qdisc. */
  readonly mechanism: TcMechanism;
  readonly interfaceIndex: number;
  readonly interfaceName: string;
  readonly direction: TcDirection;

  protected constructor(fd: number | undefined, mechanism: TcMechanism, interfaceIndex: number, interfaceName: string, direction: TcDirection) {
    expectOneOf("construct TcLink", "mechanism", mechanism, ["tcx", "netlink"]);
    expectOneOf("construct TcLink", "direction", direction, ["ingress", "egress"]);
    super(fd, `${mechanism === "tcx" ? "tcx" : "tc filter"} ${direction} on ${interfaceName}`);
    this.mechanism = mechanism;
    this.interfaceIndex = interfaceIndex;
    this.interfaceName = interfaceName;
    this.direction = direction;
  }
}
