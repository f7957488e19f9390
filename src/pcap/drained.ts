import type { Writable } from "node:stream";

/**
 * Resolves once `stream` can take more writes: at once when it does not need
 * draining, else at its next "drain" — or when it closes or fails, so a reader
 * that went away never leaves the writer waiting.
 */
export function drained(stream: Writable): Promise<void> {
  if (!stream.writableNeedDrain) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("error", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("error", done);
    stream.on("close", done);
  });
}
