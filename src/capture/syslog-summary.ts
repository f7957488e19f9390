/**
 * Syslog messages (UDP port 514) as tcpdump 4.99 -n prints them: the
 * facility and severity of the `<PRI>` prefix (up to three digits) and the
 * length, and with -v the numbers too and the message text; ` (invalid)`
 * for a message without a well-formed prefix, ` [|syslog]` where the
 * capture ends before tcpdump has read what it prints.
 */
import { decoderCut } from "./decoder-cut.js";
import { printableText } from "./printable-text.js";

const severityNames = ["emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"];
const facilityNames = [
  "kernel", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "cron",
  "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

const zero = 0x30;
const nine = 0x39;

/** ` [|syslog]`: tcpdump gives up on the message and its -x dump starts at the frame. */
function cut(text: string): string {
  decoderCut.wholeFrame = true;
  return `${text} [|syslog]`;
}

/**
 * The text tcpdump prints for a syslog message in `data[messageStart, messageEnd)` (the bytes
 * captured) whose length on the wire is `length`.
 */
export function syslogSummary(data: Uint8Array, messageStart: number, messageEnd: number, length: number, verbose: boolean): string {
  if (messageStart >= messageEnd) return cut("");
  if (data[messageStart] !== 0x3c) return " (invalid)";
  let at = messageStart + 1;
  let priority = 0;
  // At most three digits: tcpdump reads each byte it tests, so a cut there ends the message.
  for (; at <= messageStart + 3; at++) {
    if (at >= messageEnd) return cut("");
    const byte = data[at]!;
    if (byte < zero || byte > nine) break;
    priority = priority * 10 + byte - zero;
  }
  if (at >= messageEnd) return cut("");
  if (data[at] !== 0x3e) return " (invalid)";
  at++;
  const facility = (priority & 0x3f8) >> 3;
  const severity = severityNames[priority & 7]!;
  const facilityName = facilityNames[facility] ?? `unknown (${facility})`;
  if (!verbose) return `SYSLOG ${facilityName}.${severity}, length: ${length}`;
  const text = `SYSLOG, length: ${length}\n\tFacility ${facilityName} (${facility}), Severity ${severity} (${priority & 7})\n\tMsg: `;
  const end = messageStart + length;
  if (end <= messageEnd) return text + printableText(data, at, end);
  return cut(text + printableText(data, at, messageEnd));
}
