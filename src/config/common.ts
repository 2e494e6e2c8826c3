import { ErpsConfigError, describeError } from '../errors/index.js';
import { CODEC_NAMES, CodecName } from '../protocol/codec.js';
import { assertIdentifier } from '../protocol/handshake.js';

/** Checks what client and server options share; throws ErpsConfigError naming the owner. */
export function assertCommonOptions(owner: string, identifier: string, codec: CodecName): void {
  try {
    assertIdentifier(identifier);
  } catch (err) {
    throw new ErpsConfigError(`${owner}: ${describeError(err)}`);
  }
  if (!CODEC_NAMES.includes(codec)) throw new ErpsConfigError(`${owner}: unknown codec "${String(codec)}" (expected one of: ${CODEC_NAMES.join(', ')})`);
}
