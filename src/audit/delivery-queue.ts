/**
 * The bounded queue between the audit recorder and a slow destination
 * (a webhook, a syslog server over TCP, ClickHouse): `push` never waits —
 * what does not fit is dropped and counted — and one worker delivers in
 * order, retrying a failed delivery with exponential backoff.
 */
import { argumentError, expectArray, expectFunction, expectInteger, expectObject } from "../sys/argument-checks.js";
import { delay } from "../sys/delay.js";

/** Exponential backoff: attempt n (n ≥ 2) waits initial × factor^(n-2), at most `maximumDelayMilliseconds`. */
export interface RetryPolicy {
  /** Tries per delivery, the first included (1: no retry). */
  attempts: number;
  initialDelayMilliseconds: number;
  maximumDelayMilliseconds: number;
  factor: number;
}

export const defaultRetryPolicy: RetryPolicy = { attempts: 5, initialDelayMilliseconds: 500, maximumDelayMilliseconds: 30_000, factor: 2 };

/** The wait before try number `attempt` (2, 3, …). */
export function retryDelay(policy: RetryPolicy, attempt: number): number {
  checkRetryPolicy("retry delay", "policy", policy, false);
  expectInteger("retry delay", "attempt", attempt, 1);
  return Math.min(policy.maximumDelayMilliseconds, policy.initialDelayMilliseconds * policy.factor ** Math.max(0, attempt - 2));
}

/** Checks a retry policy's fields (all of them, or with `partial` those present). */
function checkRetryPolicy(operation: string, name: string, policy: Partial<RetryPolicy>, partial: boolean): void {
  expectObject(operation, name, policy);
  if (!partial || policy.attempts !== undefined) expectInteger(operation, `${name}.attempts`, policy.attempts, 1);
  for (const [field, minimum] of [["initialDelayMilliseconds", 0], ["maximumDelayMilliseconds", 0], ["factor", 1]] as const) {
    const value = policy[field];
    if (partial && value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value) || value < minimum) throw argumentError(operation, `${name}.${field}`, `a number ≥ ${minimum}`, value);
  }
}

/** A delivery failure that must not be retried (a 4xx answer, a rejected insert). */
export class PermanentDeliveryError extends Error {}

export interface DeliveryStatistics {
  /** Items accepted into the queue. */
  queued: number;
  /** Items delivered. */
  delivered: number;
  /** Items refused because the queue was full, or abandoned at close. */
  dropped: number;
  /** Items given up on after their last attempt failed. */
  failed: number;
  /** Retries made (deliveries tried again). */
  retries: number;
  /** Items waiting now. */
  waiting: number;
  /** The last delivery error, if any. */
  lastError: string | null;
}

export interface DeliveryQueueOptions<T> {
  /** Delivers a batch (in order); throws to fail it (PermanentDeliveryError: no retry). */
  deliver: (items: T[]) => Promise<void>;
  /** Most items waiting (default 10,000). */
  capacity?: number;
  /** Most items per delivery (default 1). */
  batchSize?: number;
  retry?: Partial<RetryPolicy>;
  /** Told about each failed try (e.g. to report it once). */
  onError?: (error: unknown, attempt: number, willRetry: boolean) => void;
}

export class DeliveryQueue<T> {
  readonly capacity: number;
  readonly batchSize: number;
  readonly retry: RetryPolicy;
  readonly #deliver: (items: T[]) => Promise<void>;
  readonly #onError: DeliveryQueueOptions<T>["onError"];
  readonly #items: T[] = [];
  readonly #stopping = new AbortController();
  #worker: Promise<void> | undefined;
  #closed = false;
  readonly #statistics: Omit<DeliveryStatistics, "waiting"> = { queued: 0, delivered: 0, dropped: 0, failed: 0, retries: 0, lastError: null };

  constructor(options: DeliveryQueueOptions<T>) {
    const operation = "delivery queue";
    expectObject(operation, "options", options);
    this.#deliver = expectFunction(operation, "options.deliver", options.deliver);
    this.capacity = expectInteger(operation, "options.capacity", options.capacity ?? 10_000, 1);
    this.batchSize = expectInteger(operation, "options.batchSize", options.batchSize ?? 1, 1);
    if (options.retry !== undefined) checkRetryPolicy(operation, "options.retry", options.retry, true);
    this.retry = { ...defaultRetryPolicy, ...options.retry };
    if (options.onError !== undefined) expectFunction(operation, "options.onError", options.onError);
    this.#onError = options.onError;
  }

  /** Queues items without waiting; returns how many were dropped because the queue is full (or closed). */
  push(items: readonly T[]): number {
    expectArray("queue for delivery", "items", items);
    if (this.#closed) {
      this.#statistics.dropped += items.length;
      return items.length;
    }
    const room = Math.max(0, this.capacity - this.#items.length);
    const accepted = items.length <= room ? items : items.slice(0, room);
    for (const item of accepted) this.#items.push(item);
    this.#statistics.queued += accepted.length;
    const dropped = items.length - accepted.length;
    this.#statistics.dropped += dropped;
    if (accepted.length > 0) this.#start();
    return dropped;
  }

  #start(): void {
    if (this.#worker !== undefined) return;
    this.#worker = this.#run().finally(() => {
      this.#worker = undefined;
      if (this.#items.length > 0 && !this.#stopping.signal.aborted) this.#start();
    });
  }

  statistics(): DeliveryStatistics {
    return { ...this.#statistics, waiting: this.#items.length };
  }

  /** Resolves once everything queued so far is delivered or given up on. */
  async drain(): Promise<void> {
    while (this.#worker !== undefined) await this.#worker;
  }

  /**
   * Stops accepting items and waits up to `timeoutMilliseconds` for the
   * queue to drain; what is still waiting then is abandoned (counted as dropped).
   */
  async close(timeoutMilliseconds = 5000): Promise<void> {
    expectInteger("close delivery queue", "timeoutMilliseconds", timeoutMilliseconds, 0);
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMilliseconds); });
    await Promise.race([this.drain(), deadline]);
    clearTimeout(timer);
    this.#stopping.abort();
    await this.drain();
  }

  async #run(): Promise<void> {
    const signal = this.#stopping.signal;
    while (this.#items.length > 0 && !signal.aborted) {
      const batch = this.#items.slice(0, this.batchSize);
      let settled = false;
      for (let attempt = 1; !settled;) {
        try {
          await this.#deliver(batch);
          this.#statistics.delivered += batch.length;
          settled = true;
        } catch (error) {
          this.#statistics.lastError = error instanceof Error ? error.message : String(error);
          const willRetry = !(error instanceof PermanentDeliveryError) && attempt < this.retry.attempts && !signal.aborted;
          this.#onError?.(error, attempt, willRetry);
          if (!willRetry) {
            this.#statistics.failed += batch.length;
            settled = true;
            break;
          }
          attempt++;
          this.#statistics.retries++;
          // Cut short by close(): the batch stays queued and is counted as dropped below.
          await delay(retryDelay(this.retry, attempt), signal);
          if (signal.aborted) break;
        }
      }
      if (!settled) break;
      this.#items.splice(0, batch.length);
    }
    if (signal.aborted && this.#items.length > 0) {
      this.#statistics.dropped += this.#items.length;
      this.#items.length = 0;
    }
  }
}
