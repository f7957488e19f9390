/**
 * headerOnlyPacket(): a raw IPv4 or IPv6 packet with a TCP or UDP header and
 * no payload, standing for one packet of a flow — what the filter compiler's
 * evaluator is run over when an expression is applied to a connection or an
 * audit record instead of a captured packet (the dashboard's filter box, audit
 * queries and alert rules).
 */

export interface HeaderPacketFields {
  /** IP protocol number: 6 (TCP) and 17 (UDP) get their header; any other, the bare IP header. */
  protocol: number;
  /** 4 or 16 bytes, the same length as `destination`. */
  source: Uint8Array;
  destination: Uint8Array;
  sourcePort: number;
  destinationPort: number;
  /** TCP flags byte (default ACK, 0x10). */
  tcpFlags?: number;
  /** IPv4 don't-fragment bit (default off). */
  dontFragment?: boolean;
}

export function headerOnlyPacket(fields: HeaderPacketFields): Buffer {
  const { protocol, source, destination } = fields;
  if ((source.length !== 4 && source.length !== 16) || source.length !== destination.length) {
    throw new RangeError(`header packet: addresses of ${source.length} and ${destination.length} bytes (both 4 or both 16)`);
  }
  const transport = Buffer.alloc(protocol === 6 ? 20 : protocol === 17 ? 8 : 0);
  if (transport.length > 0) {
    transport.writeUInt16BE(fields.sourcePort & 0xffff, 0);
    transport.writeUInt16BE(fields.destinationPort & 0xffff, 2);
  }
  if (protocol === 6) {
    transport[12] = 5 << 4; // data offset: 20 bytes
    transport[13] = fields.tcpFlags ?? 0x10;
    transport.writeUInt16BE(0xffff, 14); // window
  } else if (protocol === 17) {
    transport.writeUInt16BE(8, 4); // length: the header alone
  }
  if (source.length === 4) {
    const header = Buffer.alloc(20);
    header[0] = 0x45;
    header.writeUInt16BE(20 + transport.length, 2);
    if (fields.dontFragment) header.writeUInt16BE(0x4000, 6);
    header[8] = 64;
    header[9] = protocol;
    header.set(source, 12);
    header.set(destination, 16);
    return Buffer.concat([header, transport]);
  }
  const header = Buffer.alloc(40);
  header[0] = 0x60;
  header.writeUInt16BE(transport.length, 4);
  header[6] = protocol;
  header[7] = 64;
  header.set(source, 8);
  header.set(destination, 24);
  return Buffer.concat([header, transport]);
}
