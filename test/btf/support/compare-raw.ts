import assert from "node:assert/strict";
import type { Btf } from "../../../src/btf/btf.js";
import { btfKindKernelName } from "../../../src/btf/btf-types.js";
import type { RawType } from "./bpftool-raw.js";

/** Assert that our decoding of type `raw.id` agrees with bpftool's. */
export function assertMatchesRaw(btf: Btf, raw: RawType): void {
  const type = btf.type(raw.id);
  const where = `type [${raw.id}] ${raw.kind} '${raw.name}'`;
  assert.equal(btfKindKernelName[type.kind], raw.kind, where);
  assert.equal(type.name, raw.name, where);
  const f = raw.fields;
  const number = (value: string | undefined) => Number(value);
  switch (type.kind) {
    case "int": {
      const encoding = type.signed ? "SIGNED" : type.char ? "CHAR" : type.bool ? "BOOL" : "(none)";
      assert.deepEqual([type.size, type.bitOffset, type.bits, encoding], [number(f.size), number(f.bits_offset), number(f.nr_bits), f.encoding], where);
      break;
    }
    case "pointer": case "typedef": case "const": case "volatile": case "restrict": case "typeTag":
      assert.equal(type.type, number(f.type_id), where);
      break;
    case "array":
      assert.deepEqual([type.type, type.indexType, type.length], [number(f.type_id), number(f.index_type_id), number(f.nr_elems)], where);
      break;
    case "struct": case "union":
      assert.deepEqual([type.size, type.members.length], [number(f.size), number(f.vlen)], where);
      type.members.forEach((member, index) => {
        const entry = raw.entries[index]!;
        assert.deepEqual(
          [member.name, member.type, member.bitOffset, member.bitfieldSize],
          [entry.name, number(entry.fields.type_id), number(entry.fields.bits_offset), number(entry.fields.bitfield_size ?? "0")],
          `${where} member ${index}`,
        );
      });
      break;
    case "enum": case "enum64":
      assert.deepEqual([type.size, type.values.length, type.signed ? "SIGNED" : "UNSIGNED"], [number(f.size), number(f.vlen), f.encoding], where);
      type.values.forEach((value, index) => {
        const entry = raw.entries[index]!;
        assert.equal(value.name, entry.name, where);
        assert.equal(BigInt(value.value), BigInt(entry.fields.val!.replace(/U?LL$/, "")), `${where} value ${value.name}`);
      });
      break;
    case "forward":
      assert.equal(type.union ? "union" : "struct", f.fwd_kind, where);
      break;
    case "function":
      assert.deepEqual([type.type, type.linkage], [number(f.type_id), f.linkage], where);
      break;
    case "functionProto":
      assert.deepEqual([type.returnType, type.parameters.length], [number(f.ret_type_id), number(f.vlen)], where);
      type.parameters.forEach((parameter, index) => {
        const entry = raw.entries[index]!;
        assert.deepEqual([parameter.name, parameter.type], [entry.name, number(entry.fields.type_id)], `${where} parameter ${index}`);
      });
      break;
    case "variable":
      assert.deepEqual([type.type, type.linkage], [number(f.type_id), f.linkage === "global-alloc" ? "global" : f.linkage], where);
      break;
    case "dataSection":
      assert.deepEqual([type.size, type.variables.length], [number(f.size), number(f.vlen)], where);
      type.variables.forEach((variable, index) => {
        const entry = raw.entries[index]!;
        assert.deepEqual([variable.type, variable.offset, variable.size], [number(entry.fields.type_id), number(entry.fields.offset), number(entry.fields.size)], `${where} variable ${index}`);
      });
      break;
    case "float":
      assert.equal(type.size, number(f.size), where);
      break;
    case "declTag":
      assert.deepEqual([type.type, type.componentIndex], [number(f.type_id), number(f.component_idx)], where);
      break;
    default:
      assert.fail(`unexpected kind in ${where}`);
  }
}
