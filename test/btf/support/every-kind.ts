import type { BtfEncodableType } from "../../../src/btf/btf-types.js";

/** One type of every kind, with the flags and edge values each kind can carry. */
export function everyKind(): BtfEncodableType[] {
  return [
    /* 1 */ { kind: "int", name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 },
    /* 2 */ { kind: "int", name: "_Bool", size: 1, signed: false, char: false, bool: true, bitOffset: 0, bits: 1 },
    /* 3 */ { kind: "pointer", name: "", type: 4 },
    /* 4 */ { kind: "struct", name: "node", size: 16, kindFlag: false, members: [{ name: "next", type: 3, bitOffset: 0, bitfieldSize: 0 }, { name: "value", type: 1, bitOffset: 64, bitfieldSize: 0 }] },
    /* 5 */ { kind: "struct", name: "flags", size: 4, kindFlag: true, members: [{ name: "a", type: 1, bitOffset: 0, bitfieldSize: 3 }, { name: "b", type: 1, bitOffset: 3, bitfieldSize: 29 }] },
    /* 6 */ { kind: "union", name: "", size: 8, kindFlag: false, members: [{ name: "x", type: 1, bitOffset: 0, bitfieldSize: 0 }, { name: "p", type: 3, bitOffset: 0, bitfieldSize: 0 }] },
    /* 7 */ { kind: "array", name: "", type: 1, indexType: 1, length: 4 },
    /* 8 */ { kind: "enum", name: "color", size: 4, signed: true, values: [{ name: "RED", value: -1 }, { name: "GREEN", value: 2147483647 }] },
    /* 9 */ { kind: "enum", name: "big", size: 4, signed: false, values: [{ name: "MAX", value: 4294967295 }] },
    /* 10 */ { kind: "enum64", name: "wide", size: 8, signed: false, values: [{ name: "W_MAX", value: 18446744073709551615n }, { name: "W_SMALL", value: 3n }] },
    /* 11 */ { kind: "enum64", name: "wide_signed", size: 8, signed: true, values: [{ name: "W_NEG", value: -9223372036854775808n }] },
    /* 12 */ { kind: "forward", name: "opaque", union: false },
    /* 13 */ { kind: "forward", name: "opaque_union", union: true },
    /* 14 */ { kind: "typedef", name: "node_t", type: 4 },
    /* 15 */ { kind: "volatile", name: "", type: 1 },
    /* 16 */ { kind: "const", name: "", type: 15 },
    /* 17 */ { kind: "restrict", name: "", type: 3 },
    /* 18 */ { kind: "functionProto", name: "", returnType: 1, parameters: [{ name: "n", type: 3 }, { name: "", type: 0 }] },
    /* 19 */ { kind: "function", name: "walk", type: 18, linkage: "global" },
    /* 20 */ { kind: "function", name: "helper", type: 18, linkage: "static" },
    /* 21 */ { kind: "variable", name: "counter", type: 1, linkage: "global" },
    /* 22 */ { kind: "variable", name: "hidden", type: 1, linkage: "static" },
    /* 23 */ { kind: "dataSection", name: ".data", size: 8, variables: [{ type: 21, offset: 0, size: 4 }, { type: 22, offset: 4, size: 4 }] },
    /* 24 */ { kind: "float", name: "double", size: 8 },
    /* 25 */ { kind: "declTag", name: "tag", type: 4, componentIndex: 1, attribute: false },
    /* 26 */ { kind: "declTag", name: "whole", type: 19, componentIndex: -1, attribute: true },
    /* 27 */ { kind: "typeTag", name: "user", type: 1, attribute: false },
    /* 28 */ { kind: "function", name: "imported", type: 18, linkage: "extern" },
    /* 29 */ { kind: "variable", name: "external", type: 1, linkage: "extern" },
  ];
}
