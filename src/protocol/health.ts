/*
 * The health service (docs/PROTOCOL.md, "Health checks"), after gRPC's Health Checking Protocol: an ordinary CALL to
 * a reserved pattern, answered by the server's session itself, never by a handler.
 *   request payload: `{ service: string }` (or no payload: the overall status, service '')
 *   reply:           `{ status: 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN' }`
 */

/** The reserved pattern of the health check. Patterns starting with `$erps.` are reserved for the transport. */
export const HEALTH_PATTERN = '$erps.health';

/** The prefix of every pattern the transport reserves for itself. */
export const RESERVED_PATTERN_PREFIX = '$erps.';

/** What a server may set for a service with `setServingStatus`. */
export type ErpsServingStatus = 'SERVING' | 'NOT_SERVING';

/** What a health check answers: a set status, or SERVICE_UNKNOWN for a service name that was never set. */
export type ErpsHealthStatus = ErpsServingStatus | 'SERVICE_UNKNOWN';

const STATUSES: ReadonlySet<unknown> = new Set<ErpsHealthStatus>(['SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN']);

/** The service a health request asks about, or undefined when the payload is not a health request. */
export function healthRequestService(payload: unknown): string | undefined {
  if (payload === undefined || payload === null) return '';
  if (typeof payload !== 'object' || Array.isArray(payload) || Buffer.isBuffer(payload)) return undefined;
  const service = (payload as { service?: unknown }).service;
  if (service === undefined) return '';
  return typeof service === 'string' ? service : undefined;
}

/** The status in a health reply, or undefined when `reply` is not one. */
export function healthReplyStatus(reply: unknown): ErpsHealthStatus | undefined {
  if (typeof reply !== 'object' || reply === null) return undefined;
  const status = (reply as { status?: unknown }).status;
  return STATUSES.has(status) ? (status as ErpsHealthStatus) : undefined;
}

export function isServingStatus(value: unknown): value is ErpsServingStatus {
  return value === 'SERVING' || value === 'NOT_SERVING';
}
