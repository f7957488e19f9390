/**
 * DNS exchanges seen on port 53 by this host's sockets: the DNS copy program
 * (src/programs/dns-copy-program.ts) at the cgroup v2 root's ingress and
 * egress hands copies of port-53 UDP datagrams and TCP segments to user
 * space, where they are
 * parsed (dns-message.ts) and paired: a question and its answer become one
 * `DnsExchange`. On loopback the same datagram is seen leaving one socket
 * and reaching another; such copies are merged. Questions without an answer
 * are reported after `answerTimeout` with a null response code.
 */
import { closeSync, constants, openSync } from "node:fs";
import { u32, u64 } from "../core/codec.js";
import { BpfMap } from "../core/map.js";
import { Program } from "../core/program.js";
import { attachCgroup } from "../link/cgroup.js";
import { formatIpv4, formatIpv6 } from "../pcap/address-text.js";
import { decodeDnsCopy, dnsCopyProgram, dnsLostName, dnsRingName, dnsScratchName, dnsScratchValueSize } from "../programs/dns-copy-program.js";
import { RingBufferReader } from "../ringbuf/ring-buffer-reader.js";
import { AttachType, MapType, ProgramType } from "../sys/bpf-constants.js";
import { rootCgroup } from "../sys/cgroup.js";
import type { AuditDns } from "./audit-record.js";
import { readDnsMessage, type DnsMessage } from "./dns-message.js";

export interface DnsExchange extends AuditDns {
  /** When the question was seen. */
  start: Date;
  /** When the answer was seen (the question's time when none was). */
  end: Date;
}

interface Datagram {
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
  payload: Buffer;
}

/** The IP header of a copied packet: addresses, transport protocol, where the transport header starts, and whether the copy is whole. */
interface IpHeader { source: string; destination: string; protocol: number; offset: number; whole: boolean }

function parseIpHeader(packet: Buffer): IpHeader | undefined {
  if (packet.length < 1) return undefined;
  const version = packet[0]! >> 4;
  if (version === 4) {
    const headerLength = (packet[0]! & 0x0f) * 4;
    if (headerLength < 20 || packet.length < headerLength + 8) return undefined;
    return { source: formatIpv4(packet.subarray(12, 16)), destination: formatIpv4(packet.subarray(16, 20)), protocol: packet[9]!, offset: headerLength, whole: packet.readUInt16BE(2) === packet.length };
  }
  if (version === 6) {
    if (packet.length < 48) return undefined;
    return { source: formatIpv6(packet.subarray(8, 24)), destination: formatIpv6(packet.subarray(24, 40)), protocol: packet[6]!, offset: 40, whole: packet.readUInt16BE(4) + 40 === packet.length };
  }
  return undefined;
}

/** IP + UDP headers of a copied packet; undefined when it is not a whole UDP datagram start. */
export function parseUdpDatagram(packet: Buffer): Datagram | undefined {
  const ip = parseIpHeader(packet);
  return ip === undefined || ip.protocol !== 17 ? undefined : udpDatagram(packet, ip);
}

function udpDatagram(packet: Buffer, ip: IpHeader): Datagram {
  return {
    sourceAddress: ip.source,
    sourcePort: packet.readUInt16BE(ip.offset),
    destinationAddress: ip.destination,
    destinationPort: packet.readUInt16BE(ip.offset + 2),
    payload: packet.subarray(ip.offset + 8),
  };
}

/**
 * The DNS messages of a copied packet: the UDP datagram's payload, or, over
 * TCP, each length-prefixed message a segment holds. A TCP segment counts
 * only when its messages fill it exactly (or the copy was cut at the copy
 * length and the last message runs past it): a segment continuing a message
 * begun in an earlier one is skipped rather than misread.
 */
export function parseDnsPacket(packet: Buffer): Datagram[] {
  const ip = parseIpHeader(packet);
  if (ip === undefined) return [];
  if (ip.protocol === 17) return [udpDatagram(packet, ip)];
  if (ip.protocol !== 6 || packet.length < ip.offset + 20) return [];
  const dataOffset = (packet[ip.offset + 12]! >> 4) * 4;
  if (dataOffset < 20) return [];
  let payload = packet.subarray(ip.offset + dataOffset);
  const messages: Buffer[] = [];
  while (payload.length >= 2) {
    const length = payload.readUInt16BE(0);
    // A DNS header alone is 12 bytes.
    if (length < 12) return [];
    if (payload.length < 2 + length && ip.whole) return [];
    messages.push(payload.subarray(2, 2 + length));
    payload = payload.subarray(2 + length);
  }
  if (payload.length !== 0) return [];
  const ports = { sourcePort: packet.readUInt16BE(ip.offset), destinationPort: packet.readUInt16BE(ip.offset + 2) };
  return messages.map((message) => ({ sourceAddress: ip.source, destinationAddress: ip.destination, ...ports, payload: message }));
}

interface Pending {
  question: DnsMessage;
  start: Date;
  client: [string, number];
  server: [string, number];
}

/** Pairs questions with answers; knows nothing about the kernel (tested on its own). */
export class DnsPairing {
  readonly #pending = new Map<string, Pending>();
  /** Exchanges already reported (loopback copies of the answer come twice) → when. */
  readonly #done = new Map<string, number>();
  readonly answerTimeout: number;

  constructor(answerTimeout = 5000) {
    this.answerTimeout = answerTimeout;
  }

  /** Takes one datagram; returns the exchange it completes, if any. */
  add(datagram: Datagram, time: Date): DnsExchange | undefined {
    const message = readDnsMessage(datagram.payload);
    if (message === undefined) return undefined;
    const client: [string, number] = message.response ? [datagram.destinationAddress, datagram.destinationPort] : [datagram.sourceAddress, datagram.sourcePort];
    const server: [string, number] = message.response ? [datagram.sourceAddress, datagram.sourcePort] : [datagram.destinationAddress, datagram.destinationPort];
    const key = `${message.id} ${client.join("#")} ${server.join("#")} ${message.queryName} ${message.queryType}`;
    if (this.#done.has(key)) return undefined;
    if (!message.response) {
      if (!this.#pending.has(key)) this.#pending.set(key, { question: message, start: time, client, server });
      return undefined;
    }
    const pending = this.#pending.get(key);
    this.#pending.delete(key);
    this.#done.set(key, time.getTime());
    return {
      queryName: message.queryName,
      queryType: message.queryType,
      responseCode: message.responseCode,
      answers: message.answers,
      clientAddress: client[0],
      clientPort: client[1],
      serverAddress: server[0],
      serverPort: server[1],
      start: pending?.start ?? time,
      end: time,
    };
  }

  /** Questions unanswered for longer than the timeout (reported once), and forgets old answers. */
  expire(now = new Date()): DnsExchange[] {
    const expired: DnsExchange[] = [];
    for (const [key, pending] of this.#pending) {
      if (now.getTime() - pending.start.getTime() < this.answerTimeout) continue;
      this.#pending.delete(key);
      this.#done.set(key, now.getTime());
      expired.push({
        queryName: pending.question.queryName, queryType: pending.question.queryType, responseCode: null, answers: [],
        clientAddress: pending.client[0], clientPort: pending.client[1], serverAddress: pending.server[0], serverPort: pending.server[1],
        start: pending.start, end: pending.start,
      });
    }
    for (const [key, time] of this.#done) if (now.getTime() - time > 2 * this.answerTimeout) this.#done.delete(key);
    return expired;
  }
}

/** The kernel side: attaches the copy programs and yields exchanges. */
export class DnsWatcher implements Disposable {
  readonly #owned: { close(): void }[] = [];
  readonly #reader: RingBufferReader;
  readonly #lost: BpfMap<number, bigint>;
  readonly pairing: DnsPairing;
  readonly #wallClockOffset: bigint;
  #closed = false;

  constructor(options: { ringSize?: number; answerTimeout?: number } = {}) {
    this.pairing = new DnsPairing(options.answerTimeout);
    try {
      const ring = this.#own(BpfMap.create({ type: MapType.Ringbuf, maxEntries: options.ringSize ?? 1 << 20, name: dnsRingName }));
      const scratch = this.#own(BpfMap.create({ type: MapType.PercpuArray, key: u32, valueSize: dnsScratchValueSize, maxEntries: 2, name: dnsScratchName }));
      this.#lost = this.#own(BpfMap.create({ type: MapType.PercpuArray, key: u32, value: u64, maxEntries: 1, name: dnsLostName }));
      const maps = { [dnsRingName]: ring, [dnsScratchName]: scratch, [dnsLostName]: this.#lost as unknown as BpfMap };
      const cgroupFd = openSync(rootCgroup(), constants.O_RDONLY | constants.O_DIRECTORY);
      this.#own({ close: () => closeSync(cgroupFd) });
      for (const direction of ["ingress", "egress"] as const) {
        const program = this.#own(Program.load({ type: ProgramType.CgroupSkb, instructions: dnsCopyProgram(direction), name: direction === "ingress" ? "audit_dns_in" : "audit_dns_out", expectedAttachType: direction === "ingress" ? AttachType.CgroupInetIngress : AttachType.CgroupInetEgress }, { maps }));
        this.#own(attachCgroup(program, { cgroup: cgroupFd, attachType: direction }));
      }
      this.#reader = this.#own(new RingBufferReader(ring, { lostCounter: { map: this.#lost, key: 0 } }));
    } catch (error) {
      this.close();
      throw error;
    }
    this.#wallClockOffset = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  }

  #own<T extends { close(): void }>(object: T): T {
    this.#owned.push(object);
    return object;
  }

  /** Copies the ring had no room for. */
  get lost(): number {
    return this.#closed ? 0 : this.#reader.lost ?? 0;
  }

  /** Completed exchanges until the signal aborts or close(). */
  async *exchanges(signal?: AbortSignal): AsyncGenerator<DnsExchange> {
    if (this.#closed) return;
    for await (const data of this.#reader.records({ signal })) {
      const copy = decodeDnsCopy(data);
      const time = new Date(Number((copy.timestamp + this.#wallClockOffset) / 1_000_000n));
      for (const datagram of parseDnsPacket(copy.packet)) {
        const exchange = this.pairing.add(datagram, time);
        if (exchange !== undefined) yield exchange;
      }
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const object of this.#owned.splice(0).reverse()) {
      try {
        object.close();
      } catch {
        // close the rest
      }
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
