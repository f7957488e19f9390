/**
 * Which BTF kinds the running kernel accepts, probed by loading a tiny blob
 * for each (as libbpf does), and the object BTF rewritten to fit.
 */
import { Btf } from "../btf/btf.js";
import { encodeBtf } from "../btf/btf-builder.js";
import { btfNeedsSanitizing, sanitizeBtf, type BtfFeatures } from "../btf/btf-sanitize.js";
import type { BtfEncodableType } from "../btf/btf-types.js";
import { btfLoad } from "../sys/bpf.js";
import { SyscallError } from "../sys/errors.js";
import { libcClose } from "../sys/libc.js";

const int: BtfEncodableType = { kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 };

/** One small BTF per feature, using that feature and nothing newer. */
const probes: Record<keyof BtfFeatures, BtfEncodableType[]> = {
  func: [int, { kind: "functionProto", name: "", returnType: 1, parameters: [] }, { kind: "function", name: "f", type: 2, linkage: "static" }],
  funcGlobal: [int, { kind: "functionProto", name: "", returnType: 1, parameters: [] }, { kind: "function", name: "f", type: 2, linkage: "global" }],
  datasec: [int, { kind: "variable", name: "v", type: 1, linkage: "static" }, { kind: "dataSection", name: ".data", size: 4, variables: [{ type: 2, offset: 0, size: 4 }] }],
  qmarkDatasec: [int, { kind: "variable", name: "v", type: 1, linkage: "static" }, { kind: "dataSection", name: "?.data", size: 4, variables: [{ type: 2, offset: 0, size: 4 }] }],
  float: [{ kind: "float", name: "float", size: 4 }],
  declTag: [int, { kind: "variable", name: "v", type: 1, linkage: "static" }, { kind: "declTag", name: "tag", type: 2, componentIndex: -1, attribute: false }],
  typeTag: [int, { kind: "typeTag", name: "tag", type: 1, attribute: false }, { kind: "pointer", name: "", type: 2 }],
  enum64: [{ kind: "enum64", name: "e", size: 8, signed: false, values: [{ name: "E", value: 1n << 40n }] }],
};

let cached: BtfFeatures | undefined;

/** The BTF features of the running kernel (probed once per process). */
export function kernelBtfFeatures(): BtfFeatures {
  if (cached) return cached;
  const features = {} as BtfFeatures;
  for (const [feature, types] of Object.entries(probes) as [keyof BtfFeatures, BtfEncodableType[]][]) {
    try {
      libcClose(btfLoad(Buffer.from(encodeBtf(types))));
      features[feature] = true;
    } catch (error) {
      if (!(error instanceof SyscallError) || error.code === "EPERM") throw error;
      features[feature] = false;
    }
  }
  cached = features;
  return features;
}

/**
 * The object's BTF as this kernel will accept it: unchanged when it uses
 * nothing the kernel lacks, else rewritten with sanitizeBtf (type ids are kept).
 */
export function btfForKernel(raw: Buffer, features: BtfFeatures = kernelBtfFeatures()): { bytes: Buffer; sanitized: boolean } {
  const btf = Btf.parse(raw);
  if (!btfNeedsSanitizing(btf, features)) return { bytes: raw, sanitized: false };
  return { bytes: Buffer.from(sanitizeBtf(btf, features).bytes), sanitized: true };
}
