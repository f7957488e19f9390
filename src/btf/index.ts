/** netbpf/btf: the btf layer on its own (pure: loads without the FFI or libc). */
export * from "./btf.js";
export * from "./btf-types.js";
export * from "./btf-format-error.js";
export * from "./btf-builder.js";
export * from "./btf-query.js";
export * from "./btf-c-format.js";
export * from "./btf-ext.js";
export * from "./btf-sanitize.js";
export * from "./kernel-btf.js";
export * from "./core-relocation.js";
export * from "./apply-core-relocation.js";
export { valueLayout, decodeWithLayout, findNamedType, readBitfield, writeBitfield, jsonFriendly, type ValueLayout, type FieldLayout } from "./value-layout.js";
