/** The benches' summary statistics. */

/** The middle value (the mean of the two middle ones for an even count); NaN for none. Does not reorder `values`. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Smallest, middle and largest value (the median as median() computes it). */
export function spread(values: readonly number[]): { min: number; median: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0]!, median: median(sorted), max: sorted[sorted.length - 1]! };
}

/**
 * Runs `trials` rounds of every variant, the order rotated each round so no
 * variant always runs first (or right after the same other), and returns
 * each variant's results in round order.
 */
export async function rotatedTrials<V extends string, R>(variants: readonly V[], trials: number, run: (variant: V, round: number) => Promise<R>): Promise<Record<V, R[]>> {
  const results = Object.fromEntries(variants.map((variant) => [variant, [] as R[]])) as Record<V, R[]>;
  for (let round = 0; round < trials; round++) {
    for (let k = 0; k < variants.length; k++) {
      const variant = variants[(round + k) % variants.length]!;
      results[variant].push(await run(variant, round));
    }
  }
  return results;
}
