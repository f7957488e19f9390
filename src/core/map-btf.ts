/** Decoding a loaded map's keys and values with the BTF it was created with (as bpftool does). */
import { Btf } from "../btf/btf.js";
import { loadKernelBtf } from "../btf/kernel-btf.js";
import { decodeWithLayout, jsonFriendly, valueLayout, type ValueLayout } from "../btf/value-layout.js";
import { getFdById } from "../sys/bpf.js";
import { libcClose } from "../sys/libc.js";
import { btfData, type MapInfo } from "../sys/object-info.js";

export interface MapDecoder {
  key(buffer: Buffer): unknown;
  value(buffer: Buffer): unknown;
  /** Set when the value is a global data section (.rodata, .data, .bss): its name; values decode to its variables. */
  dataSection?: string;
}

/**
 * Decoders for a map's key and value from its BTF, or undefined when the map
 * has no BTF types (then show bytes). Split BTF (from a module) is read on
 * top of the kernel's.
 */
export function mapDecoder(info: MapInfo): MapDecoder | undefined {
  if (!info.btfId || (!info.btfKeyTypeId && !info.btfValueTypeId)) return undefined;
  const fd = getFdById("btf", info.btfId);
  if (fd === undefined) return undefined;
  let btf: Btf;
  try {
    const data = btfData(fd);
    try {
      btf = Btf.parse(data);
    } catch {
      btf = Btf.parse(data, { base: loadKernelBtf() });
    }
  } finally {
    libcClose(fd);
  }
  const layoutOf = (id: number): ValueLayout | undefined => {
    if (!id) return undefined;
    try {
      return valueLayout(btf, id);
    } catch {
      return undefined;
    }
  };
  const keyLayout = layoutOf(info.btfKeyTypeId);
  const valueLayoutOf = layoutOf(info.btfValueTypeId);
  const decode = (layout: ValueLayout | undefined, buffer: Buffer) => (layout ? jsonFriendly(decodeWithLayout(layout, buffer, 0)) : buffer.toString("hex"));
  const valueType = info.btfValueTypeId ? btf.type(info.btfValueTypeId) : undefined;
  const dataSection = valueType?.kind === "dataSection" ? valueType.name : undefined;
  return { key: (buffer) => decode(keyLayout, buffer), value: (buffer) => decode(valueLayoutOf, buffer), ...(dataSection !== undefined ? { dataSection } : {}) };
}
