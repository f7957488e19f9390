/**
 * Known TCP transfers between child processes whose pids the test knows: a
 * server that accepts `connections` connections, reads each to its end and
 * answers with `replyBytes`, and clients that each connect, send a given
 * number of bytes, read the reply and close.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";

export const replyBytes = 10_000;

/** Node script: a TCP server on host:port; prints "listening" then one JSON line per connection. */
export function serverScript(host: string, port: number, connections: number): string {
  return `
import net from "node:net";
let done = 0;
const server = net.createServer((socket) => {
  let received = 0;
  const remotePort = socket.remotePort;
  socket.on("data", (chunk) => { received += chunk.length; });
  socket.on("end", () => socket.end(Buffer.alloc(${replyBytes}, 0x62)));
  socket.on("close", () => {
    process.stdout.write(JSON.stringify({ remotePort, received }) + "\\n");
    if (++done === ${connections}) server.close();
  });
});
server.listen(${port}, ${JSON.stringify(host)}, () => process.stdout.write("listening\\n"));
`;
}

/** Node script: connects, sends `bytes`, reads the reply to its end; prints one JSON line. */
export function clientScript(host: string, port: number, bytes: number): string {
  return `
import net from "node:net";
const started = process.hrtime.bigint();
const socket = net.connect(${port}, ${JSON.stringify(host)});
let received = 0;
let localPort = 0;
socket.on("connect", () => { localPort = socket.localPort; socket.end(Buffer.alloc(${bytes}, 0x61)); });
socket.on("data", (chunk) => { received += chunk.length; });
socket.on("close", () => {
  const milliseconds = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(JSON.stringify({ localPort, received, milliseconds }) + "\\n");
});
`;
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Collects output; resolves when the child exits (killed by its pid after `timeoutMs`). */
export function exited(child: ChildProcessWithoutNullStreams, timeoutMs = 30_000): Promise<Finished> {
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Resolves once the child has written `text` to the given stream. */
export function waitForOutput(child: ChildProcessWithoutNullStreams, stream: "stdout" | "stderr", text: string, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`no "${text}" within ${timeoutMs} ms: ${seen}`)), timeoutMs);
    child[stream].on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (!seen.includes(text)) reject(new Error(`exited with ${code} before "${text}": ${seen}`));
    });
  });
}

/** Starts a Node script (optionally through a prefix such as `ip netns exec NS`); its pid is the script's. */
export function startNode(script: string, prefix: string[] = []): ChildProcessWithoutNullStreams {
  const command = [...prefix, process.execPath, "--input-type=module", "-e", script];
  return spawn(command[0]!, command.slice(1));
}
