import { expectProgram, type Program } from "../core/program.js";
import { AttachType, ProgramType, XdpFlag } from "../sys/bpf-constants.js";
import { linkCreate } from "../sys/bpf.js";
import { SyscallError, UnsupportedFeatureError, UsageError } from "../sys/errors.js";
import { interfaceIndex, interfaceName } from "../sys/socket.js";
import { Link } from "./link.js";
import { expectInteger, expectObject, expectOneOf } from "../sys/argument-checks.js";

export type XdpMode = "native" | "generic" | "offload";

export interface XdpOptions {
  /** Interface name or index (in the calling thread's network namespace). */
  interface: string | number;
  /**
   * "native" runs in the driver, "generic" after the kernel has built an skb
   * (works on every interface, slower), "offload" on the NIC. By default
   * native, falling back to generic when the driver has no XDP support.
   */
  mode?: XdpMode;
}

const modeFlags: Record<XdpMode, number> = { native: XdpFlag.DriverMode, generic: XdpFlag.SkbMode, offload: XdpFlag.HardwareMode };

/** An XDP program attached to an interface through a BPF link. */
export class XdpLink extends Link {
  readonly interfaceIndex: number;
  readonly interfaceName: string;
  /** The mode actually in use. */
  readonly mode: XdpMode;
  /** True when native was tried first and the driver refused it. */
  readonly fellBack: boolean;

  /** @internal */
  constructor(fd: number, ifindex: number, name: string, mode: XdpMode, fellBack: boolean) {
    expectInteger("construct XdpLink", "fd", fd, 0);
    expectInteger("construct XdpLink", "ifindex", ifindex, 1);
    expectOneOf("construct XdpLink", "mode", mode, ["native", "generic", "offload"]);
    super(fd, `xdp ${mode} on ${name}`);
    this.interfaceIndex = ifindex;
    this.interfaceName = name;
    this.mode = mode;
    this.fellBack = fellBack;
  }
}

function create(program: Program, ifindex: number, name: string, mode: XdpMode): number {
  try {
    return linkCreate({ programFd: program.fd.value, targetFd: ifindex, attachType: AttachType.Xdp, flags: modeFlags[mode] }, `attach xdp (${mode}) to ${name}`);
  } catch (error) {
    if (error instanceof SyscallError && error.code === "EBUSY") {
      throw new SyscallError(error.operation, error.errno, `${name} already has an XDP program; close its link (or \`ip link set dev ${name} xdp off\`) first`);
    }
    throw error;
  }
}

function unsupported(error: unknown): boolean {
  return error instanceof SyscallError && ["EOPNOTSUPP", "ENOTSUPP", "EINVAL"].includes(error.code);
}

/** Attaches an XDP program to an interface. `link.mode` says which mode is in use. */
export function attachXdp(program: Program, options: XdpOptions): XdpLink {
  expectProgram("attach xdp", program);
  expectObject("attach xdp", "the options", options);
  const operation = "attach xdp";
  if (program.type !== ProgramType.Xdp) {
    throw new UsageError(operation, `an XDP program must be of type Xdp, not ${ProgramType[program.type] ?? program.type}`, "load it with type ProgramType.Xdp");
  }
  if (options.mode !== undefined && !(options.mode in modeFlags)) {
    throw new UsageError(operation, `mode must be "native", "generic" or "offload", got ${JSON.stringify(options.mode)}`);
  }
  const ifindex = interfaceIndex(options.interface, operation, "options.interface");
  const name = interfaceName(ifindex) ?? String(ifindex);
  const requested = options.mode;
  try {
    return new XdpLink(create(program, ifindex, name, requested ?? "native"), ifindex, name, requested ?? "native", false);
  } catch (error) {
    if (!unsupported(error)) throw error;
    if (requested === "native") throw new UnsupportedFeatureError(operation, `native XDP on ${name}`, "the driver has no XDP support; use mode \"generic\"");
    if (requested === "offload") throw new UnsupportedFeatureError(operation, `XDP offload on ${name}`, "offload needs a NIC that runs BPF and a program loaded for that device");
    if (requested === "generic") throw error;
  }
  try {
    return new XdpLink(create(program, ifindex, name, "generic"), ifindex, name, "generic", true);
  } catch (error) {
    if (unsupported(error)) throw new UnsupportedFeatureError(operation, `XDP on ${name}`, "neither native nor generic XDP could be attached; is another XDP program attached in a different mode?");
    throw error;
  }
}
