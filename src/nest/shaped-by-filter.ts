/**
 * The error replies ErpsExceptionFilter produced. ErpsServer asks, for a call that answered Nest's generic
 * "Internal server error", whether the filter shaped it: if not, the filter is missing from that handler's chain.
 * A WeakSet, so nothing is added to the objects callers receive and nothing is kept once they are sent.
 */
const shapedByFilter = new WeakSet<object>();

export function markShapedByFilter<T>(error: T): T {
  if (typeof error === 'object' && error !== null) shapedByFilter.add(error);
  return error;
}

export function isShapedByFilter(error: unknown): boolean {
  return typeof error === 'object' && error !== null && shapedByFilter.has(error);
}
