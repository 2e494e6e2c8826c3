/**
 * Polls an async `probe` (every `intervalMs`, default 20) until it returns a value `accept` takes (default:
 * truthy); resolves with that value. Rejects after `timeoutMs` with the last value seen. For state in another
 * process (a daemon's counts over IPC) or behind I/O; `waitFor` (test/support/wait.ts) is the synchronous one.
 */
export async function pollUntil<T>(probe: () => Promise<T>, accept: (value: T) => boolean = Boolean, timeoutMs = 5000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
