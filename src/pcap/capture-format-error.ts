import { NetbpfError } from "../sys/errors.js";

/**
 * A capture file (pcap or pcapng) that cannot be read: bad magic, impossible
 * lengths, truncation, overrunning options. `offset` is the byte offset in the
 * file of the structure that is wrong.
 */
export class CaptureFormatError extends NetbpfError {
  readonly offset: number;
  readonly detail: string;

  constructor(offset: number, detail: string, hint?: string) {
    super("read capture", detail, hint ?? "the file is truncated or not a valid pcap/pcapng capture");
    this.offset = offset;
    this.detail = detail;
  }
}
