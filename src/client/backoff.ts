/** Exponential backoff with full jitter: a random delay in [0, min(max, min·2^attempt)]. */
export function backoffDelay(attempt: number, minDelayMs: number, maxDelayMs: number, random = Math.random): number {
  const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(random() * ceiling);
}
