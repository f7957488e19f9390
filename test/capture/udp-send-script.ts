/** A Node script that sends `payloads` as UDP datagrams to host:port, in order, `gapMs` apart. */
export function udpSendScript(host: string, port: number, payloads: string[], gapMs = 5): string {
  return `
import dgram from "node:dgram";
const socket = dgram.createSocket("udp4");
for (const payload of ${JSON.stringify(payloads)}) {
  await new Promise((resolve, reject) => socket.send(payload, ${port}, ${JSON.stringify(host)}, (e) => e ? reject(e) : resolve()));
  await new Promise((resolve) => setTimeout(resolve, ${gapMs}));
}
socket.close();
`;
}
