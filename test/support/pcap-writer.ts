/** Minimal pcap (not pcapng) writer for tests: microsecond timestamps, little-endian. */
export interface CapturedPacket {
  data: Uint8Array;
  /** Length on the wire; defaults to data.length (set it larger for truncated packets). */
  length?: number;
  seconds?: number;
  microseconds?: number;
}

export function writePcap(linkType: number, packets: CapturedPacket[], snapLength = 262144): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(snapLength, 16);
  header.writeUInt32LE(linkType, 20);
  const parts: Buffer[] = [header];
  for (const packet of packets) {
    const record = Buffer.alloc(16);
    record.writeUInt32LE(packet.seconds ?? 0, 0);
    record.writeUInt32LE(packet.microseconds ?? 0, 4);
    record.writeUInt32LE(packet.data.length, 8);
    record.writeUInt32LE(packet.length ?? packet.data.length, 12);
    parts.push(record, Buffer.from(packet.data));
  }
  return Buffer.concat(parts);
}

/** Minimal pcap reader for tests (both byte orders, micro/nanosecond magic). */
export function readPcap(file: Uint8Array): { linkType: number; packets: CapturedPacket[] } {
  const buffer = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  const magic = buffer.readUInt32LE(0);
  const little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!little && buffer.readUInt32BE(0) !== 0xa1b2c3d4 && buffer.readUInt32BE(0) !== 0xa1b23c4d) throw new Error("not a pcap file");
  const u32 = (offset: number) => (little ? buffer.readUInt32LE(offset) : buffer.readUInt32BE(offset));
  const linkType = u32(20) & 0x0fffffff;
  const packets: CapturedPacket[] = [];
  let offset = 24;
  while (offset + 16 <= buffer.length) {
    const captured = u32(offset + 8);
    const length = u32(offset + 12);
    const data = new Uint8Array(buffer.subarray(offset + 16, offset + 16 + captured));
    packets.push({ data, length, seconds: u32(offset), microseconds: u32(offset + 4) });
    offset += 16 + captured;
  }
  return { linkType, packets };
}
