/** Builders for test packets: Ethernet + IPv4/IPv6 + TCP/UDP, checksums left zero. */

export function ethernet(etherType: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(14);
  Buffer.from([0x02, 0, 0, 0, 0, 2]).copy(header, 0);
  Buffer.from([0x02, 0, 0, 0, 0, 1]).copy(header, 6);
  header.writeUInt16BE(etherType, 12);
  return Buffer.concat([header, payload]);
}

export function ipv4(protocol: number, payload: Buffer, options: { fragmentOffset?: number; source?: number[]; destination?: number[] } = {}): Buffer {
  const header = Buffer.alloc(20);
  header[0] = 0x45;
  header.writeUInt16BE(20 + payload.length, 2);
  header.writeUInt16BE((options.fragmentOffset ?? 0) & 0x1fff, 6);
  header[8] = 64;
  header[9] = protocol;
  Buffer.from(options.source ?? [127, 0, 0, 1]).copy(header, 12);
  Buffer.from(options.destination ?? [127, 0, 0, 1]).copy(header, 16);
  return Buffer.concat([header, payload]);
}

export function ipv6(nextHeader: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(40);
  header[0] = 0x60;
  header.writeUInt16BE(payload.length, 4);
  header[6] = nextHeader;
  header[7] = 64;
  header[23] = 1;
  header[39] = 1;
  return Buffer.concat([header, payload]);
}

export function tcp(sourcePort: number, destinationPort: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(20);
  header.writeUInt16BE(sourcePort, 0);
  header.writeUInt16BE(destinationPort, 2);
  header[12] = 5 << 4;
  header[13] = 0x18;
  return Buffer.concat([header, payload]);
}

export function udp(sourcePort: number, destinationPort: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16BE(sourcePort, 0);
  header.writeUInt16BE(destinationPort, 2);
  header.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([header, payload]);
}

export const etherTypeIpv4 = 0x0800;
export const etherTypeIpv6 = 0x86dd;
