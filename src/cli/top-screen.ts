/**
 * The live screen of `netbpf top`: a full-screen table on the terminal's
 * alternate screen, redrawn every interval, sorted by a column chosen with a
 * key. The terminal is restored on every way out (q, Ctrl-C, SIGTERM, error).
 */
import type { TrafficRow, TrafficSnapshot, TrafficGrouping } from "../monitor/traffic-watcher.js";
import { formatBytes, formatRate } from "../server/byte-units.js";

export { formatBytes, formatRate };

export interface TopColumn {
  title: string;
  /** The key that sorts by this column. */
  key: string;
  align: "left" | "right";
  text(row: TrafficRow): string;
  /** Sort value: numbers sort largest first, text alphabetically. */
  sortValue(row: TrafficRow): number | string;
}

const processText = (row: TrafficRow) => (row.process ? `${row.process.pid}/${row.process.command}` : "-");

/** The columns for a grouping, with their sort keys. */
export function topColumns(by: TrafficGrouping, perInterface: boolean): TopColumn[] {
  const columns: TopColumn[] = [];
  const text = (title: string, key: string, get: (row: TrafficRow) => string): TopColumn => ({ title, key, align: "left", text: get, sortValue: get });
  const number = (title: string, key: string, get: (row: TrafficRow) => number, format: (value: number) => string): TopColumn => ({ title, key, align: "right", text: (row) => format(get(row)), sortValue: get });
  switch (by) {
    case "port":
      columns.push(text("PROTO", "t", (row) => row.protocol ?? ""));
      columns.push({ title: "PORT", key: "p", align: "right", text: (row) => String(row.localPort ?? ""), sortValue: (row) => -(row.localPort ?? 0) });
      break;
    case "conn":
      columns.push(text("PROTO", "t", (row) => row.protocol ?? ""));
      columns.push(text("LOCAL", "l", (row) => `${bracket(row.localAddress)}:${row.localPort}`));
      columns.push(text("REMOTE", "e", (row) => `${bracket(row.remoteAddress)}:${row.remotePort}`));
      break;
    case "remote":
      columns.push(text("REMOTE", "e", (row) => row.remoteAddress ?? ""));
      break;
    case "process":
      break;
  }
  if (perInterface) columns.push(text("IFACE", "f", (row) => row.interface ?? ""));
  columns.push(text("PROCESS", "c", processText));
  columns.push(number("PKTS IN", "1", (row) => row.packetsIn, String));
  columns.push(number("BYTES IN", "2", (row) => row.bytesIn, formatBytes));
  columns.push(number("RATE IN", "3", (row) => row.bytesInPerSecond, formatRate));
  columns.push(number("PKTS OUT", "4", (row) => row.packetsOut, String));
  columns.push(number("BYTES OUT", "5", (row) => row.bytesOut, formatBytes));
  columns.push(number("RATE OUT", "6", (row) => row.bytesOutPerSecond, formatRate));
  columns.push(number("TOTAL", "7", (row) => row.bytesIn + row.bytesOut, formatBytes));
  return columns;
}

function bracket(address: string | undefined): string {
  return address?.includes(":") ? `[${address}]` : address ?? "";
}

/** Rows sorted by a column (numbers largest first, text A→Z), reversed on request. */
export function sortRows(rows: readonly TrafficRow[], column: TopColumn, reverse: boolean): TrafficRow[] {
  const sorted = [...rows].sort((a, b) => {
    const x = column.sortValue(a);
    const y = column.sortValue(b);
    const order = typeof x === "number" && typeof y === "number" ? y - x : String(x).localeCompare(String(y));
    return order || a.key.localeCompare(b.key);
  });
  return reverse ? sorted.reverse() : sorted;
}

/** Aligned table lines (header first), each cut to `width`. */
export function renderRows(columns: readonly TopColumn[], rows: readonly TrafficRow[], sortColumn: TopColumn | undefined, width = Infinity): string[] {
  const cells = rows.map((row) => columns.map((column) => column.text(row)));
  const titles = columns.map((column) => `${column.title}${column === sortColumn ? "*" : ""}`);
  const widths = columns.map((_, index) => Math.max(titles[index]!.length, ...cells.map((row) => row[index]!.length)));
  const line = (values: string[]) => values.map((value, index) => (columns[index]!.align === "right" ? value.padStart(widths[index]!) : value.padEnd(widths[index]!))).join("  ").trimEnd().slice(0, width);
  return [line(titles), ...cells.map(line)];
}

/** One full screen of text. */
export function renderScreen(snapshot: TrafficSnapshot, columns: readonly TopColumn[], sortColumn: TopColumn, reverse: boolean, size: { columns: number; rows: number }, description: string): string {
  const totals = snapshot.totals;
  const header = [
    `netbpf top — ${description} — ${snapshot.time.slice(11, 19)} — in ${formatRate(totals.bytesInPerSecond)}, out ${formatRate(totals.bytesOutPerSecond)} — ${snapshot.rows.length} rows, ${snapshot.entries} keys, ${snapshot.evictions} evicted`,
    `sort: ${columns.map((column) => `${column.key} ${column.title.toLowerCase()}`).join(", ")}; r reverse; q quit`,
    "",
  ];
  const room = Math.max(1, size.rows - header.length - 1);
  const lines = renderRows(columns, sortRows(snapshot.rows, sortColumn, reverse).slice(0, room), sortColumn, size.columns);
  return [...header.map((line) => line.slice(0, size.columns)), ...lines].join("\n");
}

const enterAlternateScreen = "\x1b[?1049h\x1b[?25l";
const leaveAlternateScreen = "\x1b[?25h\x1b[?1049l";
const clearAndHome = "\x1b[H\x1b[2J";

/** Owns the terminal while the live screen runs. */
export class TerminalScreen {
  #active = false;
  readonly #input: NodeJS.ReadStream;
  readonly #output: NodeJS.WriteStream;
  readonly #onKey: (key: string) => void;
  readonly #listener = (data: Buffer) => {
    for (const character of data.toString("utf8")) this.#onKey(character);
  };
  readonly #restoreOnExit = () => this.restore();

  constructor(input: NodeJS.ReadStream, output: NodeJS.WriteStream, onKey: (key: string) => void) {
    this.#input = input;
    this.#output = output;
    this.#onKey = onKey;
  }

  start(): void {
    this.#active = true;
    process.once("exit", this.#restoreOnExit);
    this.#output.write(enterAlternateScreen);
    if (this.#input.isTTY) this.#input.setRawMode(true);
    this.#input.on("data", this.#listener);
    this.#input.resume();
  }

  get size(): { columns: number; rows: number } {
    return { columns: this.#output.columns ?? 80, rows: this.#output.rows ?? 24 };
  }

  draw(text: string): void {
    if (this.#active) this.#output.write(clearAndHome + text);
  }

  restore(): void {
    if (!this.#active) return;
    this.#active = false;
    process.removeListener("exit", this.#restoreOnExit);
    this.#input.removeListener("data", this.#listener);
    if (this.#input.isTTY) this.#input.setRawMode(false);
    this.#input.pause();
    this.#output.write(leaveAlternateScreen);
  }
}
