/**
 * Loading a generated program and keeping it attached through a pinned BPF
 * link, for the persistent tools of this folder (firewall, limits, marks).
 * A change loads the new program first (so a verifier rejection changes
 * nothing) and swaps it in with BPF_LINK_UPDATE: packets see the old program
 * or the new one, never none.
 */
import type { AssembledProgram } from "../asm/assembler.js";
import type { BpfMap } from "../core/map.js";
import { Program } from "../core/program.js";
import { Link } from "../link/link.js";
import { attachTcx } from "../link/tcx.js";
import { attachXdp, type XdpLink } from "../link/xdp.js";
import { ProgramType } from "../sys/bpf-constants.js";
import { NetbpfError } from "../sys/errors.js";
import type { StateAttachment, StateComponent } from "../state/state-store.js";

export type Hook = "xdp" | "tc ingress" | "tc egress";

export function loadGenerated(name: string, hook: Hook, program: AssembledProgram, maps: Record<string, BpfMap<any, any>>): Program {
  return Program.load({ name, type: hook === "xdp" ? ProgramType.Xdp : ProgramType.SchedCls, instructions: program, license: "GPL" }, { maps });
}

/**
 * Attaches a loaded program to an interface and pins the link as `pinName`
 * in the component. Returns the attachment for the manifest.
 */
export function attachAndPin(component: StateComponent, pinName: string, program: Program, hook: Hook, interfaceName: string): StateAttachment {
  if (hook === "xdp") {
    const link: XdpLink = attachXdp(program, { interface: interfaceName });
    try {
      component.pin(pinName, link);
    } finally {
      link.close();
    }
    return { hook: "xdp", mechanism: `xdp ${link.mode}`, interface: interfaceName, pin: pinName };
  }
  const direction = hook === "tc ingress" ? "ingress" : "egress";
  const link = attachTcx(program, { interface: interfaceName, direction });
  try {
    if (!link.isBpfLink) {
      throw new NetbpfError(`attach ${hook} on ${interfaceName}`, "this kernel has no tcx links, and a netlink tc filter cannot outlive the command",
        "persistent rules need a kernel with tcx (Linux 6.6 or later)");
    }
    component.pin(pinName, link);
  } finally {
    link.close();
  }
  return { hook, mechanism: "tcx", interface: interfaceName, pin: pinName };
}

/** Swaps the program of a pinned link (atomic for the packets). */
export function replacePinnedProgram(component: StateComponent, pinName: string, program: Program): void {
  using link = Link.openPinned(component.pinPath(pinName));
  link.update(program);
}
