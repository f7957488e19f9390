/**
 * The balancer's program loaded against maps of its own (no interface, no
 * state folder) for BPF_PROG_TEST_RUN: IPv4 backends 198.18.i.2:8080 (three
 * unless told) reached from 198.18.i.1, VIP 203.0.113.10:80. Shared by the program's
 * test and bench/balancer.ts.
 */
import { balancerMapNames, balancerProgram, backendEntryCodec, controlCodec, reverseCodec } from "../../src/balancer/balancer-program.js";
import { maglevTable } from "../../src/balancer/maglev.js";
import { BpfMap } from "../../src/core/map.js";
import { Program } from "../../src/core/program.js";
import { MapType, ProgramType } from "../../src/sys/bpf-constants.js";

export const fixtureVip = [203, 0, 113, 10];
export const fixturePort = 80;

export function ipv4Checksum(data: Buffer): number {
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) sum += (data[i]! << 8) | (data[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** The TCP checksum of an IPv4 frame (0 when the stored one is right). */
export function tcpChecksumOf(frame: Buffer): number {
  const ip = frame.subarray(14);
  const tcp = ip.subarray(20, ip.readUInt16BE(2));
  const pseudo = Buffer.alloc(12);
  ip.copy(pseudo, 0, 12, 20);
  pseudo[9] = 6;
  pseudo.writeUInt16BE(tcp.length, 10);
  return ipv4Checksum(Buffer.concat([pseudo, tcp]));
}

/** A 20-byte TCP segment in an IPv4 frame; flags default to a bare ACK. */
export function tcpFrame(source: number[], destination: number[], sourcePort: number, destinationPort: number, ttl = 64, flags = 0x10): Buffer {
  const frame = Buffer.alloc(14 + 20 + 20);
  frame.writeUInt16BE(0x0800, 12);
  const ip = frame.subarray(14, 34);
  ip[0] = 0x45; ip.writeUInt16BE(40, 2); ip[8] = ttl; ip[9] = 6;
  Buffer.from(source).copy(ip, 12); Buffer.from(destination).copy(ip, 16);
  ip.writeUInt16BE(ipv4Checksum(ip), 10);
  const tcp = frame.subarray(34);
  tcp.writeUInt16BE(sourcePort, 0); tcp.writeUInt16BE(destinationPort, 2); tcp[12] = 0x50; tcp[13] = flags; tcp.writeUInt16BE(65535, 14);
  tcp.writeUInt16BE(tcpChecksumOf(frame), 16);
  return frame;
}

export interface BalancerProgramFixture {
  program: Program;
  /** The program's maps by name (raw Buffers). */
  maps: Record<string, BpfMap>;
  close(): void;
}

/** A u32 map key (or value) in host order. */
export function u32Key(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

export interface BalancerProgramFixtureOptions {
  tableSize?: number;
  /** Backends 0..backends-1 (at most 3 by default). */
  backends?: number;
  natPorts?: { first: number; last: number };
  natPortHoldMs?: number;
}

export function balancerProgramFixture(options: BalancerProgramFixtureOptions = {}): BalancerProgramFixture {
  const { tableSize = 4093, backends = 3, natPorts = { first: 10000, last: 32767 }, natPortHoldMs } = options;
  const maps = {
    [balancerMapNames.backends]: BpfMap.create({ type: MapType.Array, keySize: 4, valueSize: backendEntryCodec.size, maxEntries: 256 }),
    [balancerMapNames.maglev]: BpfMap.create({ type: MapType.Array, keySize: 4, valueSize: 4, maxEntries: 2 * tableSize }),
    [balancerMapNames.control]: BpfMap.create({ type: MapType.Array, keySize: 4, valueSize: controlCodec.size, maxEntries: 1 }),
    [balancerMapNames.conntrack]: BpfMap.create({ type: MapType.LruHash, keySize: 40, valueSize: 8, maxEntries: 65536 }),
    [balancerMapNames.reverse]: BpfMap.create({ type: MapType.LruHash, keySize: 40, valueSize: reverseCodec.size, maxEntries: 65536 }),
    [balancerMapNames.stats]: BpfMap.create({ type: MapType.PercpuArray, keySize: 4, valueSize: 40, maxEntries: 257 }),
  };
  const close = () => Object.values(maps).forEach((m) => m.close());
  try {
    const key = u32Key;
    for (let i = 0; i < backends; i++) {
      const entry = Buffer.alloc(backendEntryCodec.size);
      Buffer.from([198, 18, i, 2]).copy(entry, 0);
      Buffer.from([198, 18, i, 1]).copy(entry, 16);
      entry.writeUInt16BE(8080, 32); entry.writeUInt16LE(2, 34); entry.writeUInt32LE(1, 36); entry.writeUInt32LE(1, 40);
      maps[balancerMapNames.backends]!.put(key(i), entry);
    }
    const table = maglevTable(Array.from({ length: backends }, (_, i) => ({ key: String(i), weight: 1 })), tableSize);
    maps[balancerMapNames.maglev]!.updateBatch(Array.from(table, (backend, slot) => [key(slot), key(backend)] as [Buffer, Buffer]));
    maps[balancerMapNames.control]!.put(key(0), Buffer.alloc(8));
    const program = Program.load({
      type: ProgramType.SchedCls, name: "nb_lb_fixture",
      instructions: balancerProgram({ vip: Buffer.from(fixtureVip), port: fixturePort, protocol: "tcp", mode: "nat", tableSize, natPorts, natPortHoldMs }),
    }, { maps });
    return { program, maps, close: () => { program.close(); close(); } };
  } catch (error) {
    close();
    throw error;
  }
}
