import type { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Caller-context forwarding, the TypeScript form of Erps' `forward_callers`: the client captures
 * `storage.getStore()` at each send()/emit() and the server re-enters it with `storage.run()` around
 * the handler. Without a forwarded value, handlers run in the context that was active at `listen()`.
 */
export interface ForwardContextOptions<TStore = unknown> {
  storage: AsyncLocalStorage<TStore>;
  /** Client side: store → a codec-serializable value. Default: the store itself. */
  encode?: (store: TStore) => unknown;
  /** Server side: the forwarded value → the store to run the handler in. Default: the value itself. */
  decode?: (value: unknown) => TStore;
}
