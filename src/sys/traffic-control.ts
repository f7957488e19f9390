/** Traffic control over rtnetlink: the clsact qdisc and cls_bpf filters. */
import { attributeString, AttributeWriter, NetlinkFlag, parseAttributes, RouteMessageType, type RouteNetlink } from "./netlink.js";

/** Parent handles of the clsact qdisc's two hooks. */
export const ClsactParent = { Qdisc: 0xfffffff1, Ingress: 0xfffffff2, Egress: 0xfffffff3 } as const;
const clsactHandle = 0xffff0000;

const TCA_KIND = 1;
const TCA_OPTIONS = 2;
const TCA_BPF_FD = 6;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
const TCA_BPF_ID = 11;
const TCA_BPF_FLAG_ACT_DIRECT = 1;

const ethernetAll = 0x0003;

function tcMessage(ifindex: number, handle: number, parent: number, info: number): Buffer {
  // struct tcmsg: family u8, pad u8, pad u16, ifindex i32, handle u32, parent u32, info u32
  const b = Buffer.alloc(20);
  b.writeInt32LE(ifindex, 4);
  b.writeUInt32LE(handle >>> 0, 8);
  b.writeUInt32LE(parent >>> 0, 12);
  b.writeUInt32LE(info >>> 0, 16);
  return b;
}

function decodeTcMessage(payload: Buffer) {
  return {
    ifindex: payload.readInt32LE(4),
    handle: payload.readUInt32LE(8),
    parent: payload.readUInt32LE(12),
    info: payload.readUInt32LE(16),
    attributes: parseAttributes(payload, 20),
  };
}

export interface Qdisc {
  kind: string;
  handle: number;
  parent: number;
}

export function listQdiscs(netlink: RouteNetlink, ifindex: number): Qdisc[] {
  const messages = netlink.dump(RouteMessageType.GetQdisc, tcMessage(ifindex, 0, 0, 0), { operation: "list qdiscs" });
  const result: Qdisc[] = [];
  for (const message of messages) {
    const m = decodeTcMessage(message.payload);
    if (m.ifindex !== ifindex) continue;
    result.push({ kind: attributeString(m.attributes.get(TCA_KIND)) ?? "", handle: m.handle, parent: m.parent });
  }
  return result;
}

export function hasClsact(netlink: RouteNetlink, ifindex: number): boolean {
  return listQdiscs(netlink, ifindex).some((q) => q.kind === "clsact");
}

/** Adds a clsact qdisc. Returns false when one was already there. */
export function addClsact(netlink: RouteNetlink, ifindex: number, interfaceLabel: string): boolean {
  const payload = Buffer.concat([tcMessage(ifindex, clsactHandle, ClsactParent.Qdisc, 0), new AttributeWriter().string(TCA_KIND, "clsact").toBuffer()]);
  try {
    netlink.request(RouteMessageType.NewQdisc, NetlinkFlag.Create | NetlinkFlag.Exclusive, payload, {
      operation: `add clsact qdisc to ${interfaceLabel}`,
      hints: { EPERM: "needs root or CAP_NET_ADMIN", EOPNOTSUPP: "this kernel has no clsact qdisc (CONFIG_NET_SCH_INGRESS)" },
    });
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === "EEXIST") return false;
    throw error;
  }
}

export function deleteClsact(netlink: RouteNetlink, ifindex: number, interfaceLabel: string): void {
  const payload = Buffer.concat([tcMessage(ifindex, clsactHandle, ClsactParent.Qdisc, 0), new AttributeWriter().string(TCA_KIND, "clsact").toBuffer()]);
  netlink.request(RouteMessageType.DeleteQdisc, 0, payload, { operation: `delete clsact qdisc from ${interfaceLabel}` });
}

export interface Filter {
  kind: string;
  parent: number;
  priority: number;
  protocol: number;
  handle: number;
  /** For cls_bpf filters: the program's id and name. */
  programId?: number;
  programName?: string;
  directAction?: boolean;
}

function decodeFilter(payload: Buffer): Filter {
  const m = decodeTcMessage(payload);
  const filter: Filter = {
    kind: attributeString(m.attributes.get(TCA_KIND)) ?? "",
    parent: m.parent,
    priority: m.info >>> 16,
    protocol: ((m.info & 0xff) << 8) | ((m.info >> 8) & 0xff),
    handle: m.handle,
  };
  const options = m.attributes.get(TCA_OPTIONS);
  if (filter.kind === "bpf" && options) {
    const o = parseAttributes(options);
    const id = o.get(TCA_BPF_ID);
    if (id) filter.programId = id.readUInt32LE(0);
    filter.programName = attributeString(o.get(TCA_BPF_NAME));
    const flags = o.get(TCA_BPF_FLAGS);
    filter.directAction = flags ? (flags.readUInt32LE(0) & TCA_BPF_FLAG_ACT_DIRECT) !== 0 : false;
  }
  return filter;
}

/** Filters on one hook (parent) of an interface. Handles of 0 are the per-priority chain heads and are left out. */
export function listFilters(netlink: RouteNetlink, ifindex: number, parent: number): Filter[] {
  const messages = netlink.dump(RouteMessageType.GetFilter, tcMessage(ifindex, 0, parent, 0), {
    operation: "list tc filters",
    hints: { EINVAL: "the interface has no clsact qdisc" },
  });
  return messages.map((m) => decodeFilter(m.payload)).filter((f) => f.handle !== 0);
}

export interface BpfFilterOptions {
  ifindex: number;
  interfaceLabel: string;
  parent: number;
  programFd: number;
  programName: string;
  /** 1..65535; 0 lets the kernel choose. */
  priority: number;
  /** 0 lets the kernel choose. */
  handle: number;
  /** Replace the filter at this priority and handle instead of failing when one is there. */
  replace?: boolean;
}

/** Adds (or replaces) a direct-action cls_bpf filter and returns it as the kernel stored it. */
export function addBpfFilter(netlink: RouteNetlink, o: BpfFilterOptions): Filter {
  const info = ((o.priority & 0xffff) << 16) | (((ethernetAll & 0xff) << 8) | (ethernetAll >> 8));
  const attributes = new AttributeWriter()
    .string(TCA_KIND, "bpf")
    .nested(TCA_OPTIONS, (w) => w.u32(TCA_BPF_FD, o.programFd).string(TCA_BPF_NAME, o.programName).u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT));
  const flags = NetlinkFlag.Create | NetlinkFlag.Echo | (o.replace ? NetlinkFlag.Replace : NetlinkFlag.Exclusive);
  const replies = netlink.request(RouteMessageType.NewFilter, flags, Buffer.concat([tcMessage(o.ifindex, o.handle, o.parent, info), attributes.toBuffer()]), {
    operation: `add cls_bpf filter to ${o.interfaceLabel}`,
    hints: {
      EPERM: "needs root or CAP_NET_ADMIN",
      EEXIST: "a filter with this priority and handle is already there; choose another priority or handle",
      EINVAL: "the program must be of type SchedCls or SchedAct",
    },
  });
  const echoed = replies.find((m) => m.type === RouteMessageType.NewFilter);
  if (echoed) return decodeFilter(echoed.payload);
  return { kind: "bpf", parent: o.parent, priority: o.priority, protocol: ethernetAll, handle: o.handle };
}

export function deleteFilter(netlink: RouteNetlink, ifindex: number, interfaceLabel: string, filter: Pick<Filter, "parent" | "priority" | "protocol" | "handle" | "kind">): void {
  const info = ((filter.priority & 0xffff) << 16) | (((filter.protocol & 0xff) << 8) | (filter.protocol >> 8));
  const payload = Buffer.concat([tcMessage(ifindex, filter.handle, filter.parent, info), new AttributeWriter().string(TCA_KIND, filter.kind).toBuffer()]);
  netlink.request(RouteMessageType.DeleteFilter, 0, payload, { operation: `delete tc filter from ${interfaceLabel}` });
}
