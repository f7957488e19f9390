/**
 * Resolves after `milliseconds` or when `signal` aborts; never rejects. The
 * abort listener goes when the timer fires: a loop that waits on one signal
 * round after round leaves none behind.
 */
export function delay(milliseconds: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const end = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", end);
      resolve();
    };
    const timer = setTimeout(end, milliseconds);
    signal?.addEventListener("abort", end, { once: true });
  });
}
