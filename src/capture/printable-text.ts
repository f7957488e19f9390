/** Bytes as tcpdump prints untrusted text: `M-` before bytes above 127, `^X` for control characters. */
export function printableText(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let text = "";
  for (let i = start; i < end; i++) {
    let byte = bytes[i]!;
    if (byte > 0x7f) {
      text += "M-";
      byte &= 0x7f;
    }
    if (byte < 0x20 || byte === 0x7f) {
      text += "^";
      byte ^= 0x40;
    }
    text += String.fromCharCode(byte);
  }
  return text;
}
