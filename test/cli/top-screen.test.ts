import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cliPath } from "../support/cli.js";
import { isRoot, skipUnlessKernel, skipUnlessTool } from "../support/kernel.js";
import { ScriptProcess } from "../support/traffic-scripts.js";

/** Two UDP ports on loopback; on "go" sends 20 KB to the lower one and 200 KB to the higher one. */
const twoPortsScript = `
import dgram from "node:dgram";
import { createInterface } from "node:readline";
const a = dgram.createSocket("udp4"), b = dgram.createSocket("udp4"), sender = dgram.createSocket("udp4");
a.on("message", () => {}); b.on("message", () => {});
await new Promise((r) => a.bind(0, "127.0.0.1", r));
await new Promise((r) => b.bind(0, "127.0.0.1", r));
const [low, high] = [a.address().port, b.address().port].sort((x, y) => x - y);
process.stdout.write(JSON.stringify({ low, high }) + "\\n");
createInterface({ input: process.stdin }).on("line", async () => {
  for (let i = 0; i < 200; i++) {
    if (i < 20) await new Promise((r) => sender.send(Buffer.alloc(1000), low, "127.0.0.1", r));
    await new Promise((r) => sender.send(Buffer.alloc(1000), high, "127.0.0.1", r));
  }
  process.stdout.write("sent\\n");
});
setTimeout(() => process.exit(0), 60000);
`;

function tmux(socket: string, args: string[]): string {
  const result = spawnSync("tmux", ["-L", socket, ...args], { encoding: "utf8", timeout: 10_000 });
  if (result.status !== 0) throw new Error(`tmux ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

async function waitForPane(socket: string, session: string, accept: (text: string) => boolean, what: string, timeout = 15_000): Promise<string> {
  const start = Date.now();
  let text = "";
  while (Date.now() - start < timeout) {
    text = tmux(socket, ["capture-pane", "-p", "-t", session]);
    if (accept(text)) return text;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${what}; the screen shows:\n${text}`);
}

/** Line numbers of the rows of two ports in the table (PROTO PORT …). */
function rowOrder(text: string, low: number, high: number): [number, number] {
  const lines = text.split("\n");
  const find = (port: number) => lines.findIndex((line) => new RegExp(`^udp\\s+${port}\\s`).test(line));
  return [find(low), find(high)];
}

test("top's live screen under tmux: shows the table, a sort key changes the order, q restores the terminal", { timeout: 60_000 }, async (t) => {
  if (skipUnlessKernel(t, isRoot(), "needs root for cgroup skb programs")) return;
  if (skipUnlessTool(t, spawnSync("tmux", ["-V"]).status === 0, "tmux is not installed (apt-get install tmux)")) return;
  const socket = `nbm1-${randomBytes(4).toString("hex")}`;
  const session = "top";
  const ports = ScriptProcess.node(twoPortsScript);
  t.after(() => {
    ports.kill();
    spawnSync("tmux", ["-L", socket, "kill-server"], { timeout: 10_000 });
  });
  const { low, high } = await ports.nextJson<{ low: number; high: number }>();
  tmux(socket, ["new-session", "-d", "-s", session, "-x", "160", "-y", "40", "bash --norc --noprofile"]);
  tmux(socket, ["send-keys", "-t", session, `PS1='nbm1$ ' ; echo before-top`, "Enter"]);
  await waitForPane(socket, session, (text) => text.includes("before-top"), "the shell did not start");
  tmux(socket, ["send-keys", "-t", session, `${process.execPath} ${cliPath} top --interval 0.3 --port ${low} --port ${high}; echo top-exited-$?`, "Enter"]);
  await waitForPane(socket, session, (text) => /PROTO\s+PORT\s+PROCESS/.test(text) && text.includes("sort:"), "no table header");
  ports.child.stdin.write("go\n");
  assert.equal(await ports.nextLine(), "sent");

  // Default order: most bytes first — the high port (200 KB) above the low one (20 KB).
  const byTotal = await waitForPane(socket, session, (text) => {
    const [lowRow, highRow] = rowOrder(text, low, high);
    return lowRow > 0 && highRow > 0 && text.includes("TOTAL*");
  }, "both ports did not show up");
  const [lowByTotal, highByTotal] = rowOrder(byTotal, low, high);
  assert.ok(highByTotal < lowByTotal, `sorted by total: port ${high} first\n${byTotal}`);
  assert.ok(byTotal.includes("\x1b") === false);

  // "p" sorts by port: the low port comes first.
  tmux(socket, ["send-keys", "-t", session, "p"]);
  const byPort = await waitForPane(socket, session, (text) => text.includes("PORT*"), "the sort key did not take");
  const [lowByPort, highByPort] = rowOrder(byPort, low, high);
  assert.ok(lowByPort > 0 && lowByPort < highByPort, `sorted by port: port ${low} first\n${byPort}`);

  // q: top ends with status 0, the alternate screen is gone and the terminal is back in cooked mode with echo.
  tmux(socket, ["send-keys", "-t", session, "q"]);
  const after = await waitForPane(socket, session, (text) => text.includes("top-exited-"), "top did not end on q");
  assert.match(after, /top-exited-0/);
  assert.ok(!/PROTO\s+PORT/.test(after), `the table is gone with the alternate screen:\n${after}`);
  assert.ok(after.includes("before-top"), "the shell's screen is back");
  tmux(socket, ["send-keys", "-t", session, "stty -a | tr ' ' '\\n' | grep -x -e '-\\?icanon' -e '-\\?echo' | tr '\\n' ' '; echo stty-done", "Enter"]);
  const modes = await waitForPane(socket, session, (text) => /icanon echo stty-done/.test(text) || /-icanon|-echo /.test(text), "no stty output");
  assert.match(modes, /(^|\s)icanon echo stty-done/m, `terminal modes restored:\n${modes}`);
  // The cursor is visible again: tmux reports cursor_flag 1.
  assert.equal(tmux(socket, ["display-message", "-p", "-t", session, "#{cursor_flag}"]).trim(), "1");
});
