import { ErpsHeadersError } from '../errors/index.js';

/**
 * Per-message metadata travels as one codec-encoded map: the user's string headers plus reserved keys
 * (prefix "erps-") that the transport itself uses. Limits keep a hostile peer from making it expensive.
 */
export const MAX_HEADERS = 64;
export const MAX_HEADER_NAME_BYTES = 128;
export const MAX_HEADER_VALUE_BYTES = 8 * 1024;
/** Caller context forwarded by `forwardContext` (any codec value). */
export const CONTEXT_KEY = 'erps-context';
const RESERVED_PREFIX = 'erps-';
const NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

export type Headers = Record<string, string>;

/** Throws ErpsHeadersError if `headers` break a limit or use a reserved name. */
export function validateHeaders(headers: Record<string, unknown>): asserts headers is Headers {
  const names = Object.keys(headers);
  if (names.length > MAX_HEADERS) throw new ErpsHeadersError(`too many headers: ${names.length} (at most ${MAX_HEADERS})`);
  for (const name of names) {
    if (!NAME.test(name) || Buffer.byteLength(name) > MAX_HEADER_NAME_BYTES) {
      throw new ErpsHeadersError(`invalid header name "${name.slice(0, 40)}": use 1..${MAX_HEADER_NAME_BYTES} token characters`);
    }
    if (name.toLowerCase().startsWith(RESERVED_PREFIX)) throw new ErpsHeadersError(`header name "${name}" uses the reserved prefix "${RESERVED_PREFIX}"`);
    const value = headers[name];
    if (typeof value !== 'string') throw new ErpsHeadersError(`header "${name}" must be a string`);
    if (Buffer.byteLength(value) > MAX_HEADER_VALUE_BYTES) throw new ErpsHeadersError(`header "${name}" is longer than ${MAX_HEADER_VALUE_BYTES} bytes`);
  }
}

/** The metadata map for one message, or null when there is nothing to send. */
export function buildMeta(headers: Headers | undefined, hasContext: boolean, context: unknown): Record<string, unknown> | null {
  const hasHeaders = headers !== undefined && Object.keys(headers).length > 0;
  if (!hasHeaders && !hasContext) return null;
  const meta: Record<string, unknown> = hasHeaders ? { ...headers } : {};
  if (hasContext) meta[CONTEXT_KEY] = context;
  return meta;
}

export interface SplitMeta {
  headers: Readonly<Headers>;
  hasContext: boolean;
  context: unknown;
}

const NONE: Readonly<Headers> = Object.freeze({});

/** Validates a decoded metadata map from the peer and separates the user headers from reserved keys. */
export function splitMeta(decoded: unknown): SplitMeta {
  if (decoded === null || typeof decoded !== 'object' || Array.isArray(decoded) || decoded instanceof Map) {
    throw new ErpsHeadersError('message metadata must be a map');
  }
  const { [CONTEXT_KEY]: context, ...rest } = decoded as Record<string, unknown>;
  const hasContext = Object.prototype.hasOwnProperty.call(decoded, CONTEXT_KEY);
  validateHeaders(rest);
  return { headers: Object.keys(rest).length === 0 ? NONE : Object.freeze(rest), hasContext, context };
}
