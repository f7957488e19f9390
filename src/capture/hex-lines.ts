/** tcpdump's -x (`ascii` false) and -X (true) lines for `data`, each starting with a newline: 16 bytes a line in groups of two. */
export function hexLines(data: Uint8Array, ascii: boolean): string {
  let text = "";
  for (let offset = 0; offset < data.length; offset += 16) {
    const lineEnd = Math.min(offset + 16, data.length);
    let hexPart = "";
    for (let i = offset; i < lineEnd; i += 2) {
      hexPart += ` ${hex2(data[i]!)}${i + 1 < lineEnd ? hex2(data[i + 1]!) : ""}`;
    }
    text += `\n\t0x${offset.toString(16).padStart(4, "0")}:  ${hexPart.slice(1)}`;
    if (ascii) {
      text += `${" ".repeat(40 - hexPart.length)}  `;
      for (let i = offset; i < lineEnd; i++) {
        const byte = data[i]!;
        text += byte > 0x20 && byte < 0x7f ? String.fromCharCode(byte) : ".";
      }
    }
  }
  return text;
}

const hexDigits = "0123456789abcdef";

function hex2(byte: number): string {
  return hexDigits[byte >> 4]! + hexDigits[byte & 15]!;
}
