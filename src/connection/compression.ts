import * as zlib from 'node:zlib';
import { ErpsFrameTooLargeError, ErpsProtocolError } from '../errors/index.js';
import { FrameType } from '../protocol/frame.js';

export type CompressionAlgorithm = 'deflate' | 'brotli';

export interface CompressionOptions {
  /** Frame bodies of at least this many bytes are compressed. Default 1024. */
  threshold?: number;
  /** Default 'deflate'. */
  algorithm?: CompressionAlgorithm;
}

/** Feature bits offered in HELLO and chosen in WELCOME. */
export const CompressionFeature = { deflate: 0x01, brotli: 0x02 } as const;
export const COMPRESSION_FEATURES = CompressionFeature.deflate | CompressionFeature.brotli;

export function algorithmFromFeatures(features: number): CompressionAlgorithm | undefined {
  if (features & CompressionFeature.brotli) return 'brotli';
  if (features & CompressionFeature.deflate) return 'deflate';
  return undefined;
}

const COMPRESSIBLE = new Set<number>([FrameType.CALL, FrameType.CAST, FrameType.REPLY, FrameType.ERROR, FrameType.PUSH]);

/**
 * Per-frame compression. Synchronous on purpose: frames keep their order on the wire. Inflation is capped
 * at maxFrameBytes, so a small frame that inflates past the limit (a bomb) is refused without the memory.
 */
export class FrameCompressor {
  constructor(
    readonly algorithm: CompressionAlgorithm,
    readonly threshold: number,
  ) {}

  wants(type: FrameType, bodyLength: number): boolean {
    return bodyLength >= this.threshold && COMPRESSIBLE.has(type);
  }

  compress(prefix: Buffer, payload: Buffer): Buffer {
    const body = payload.length === 0 ? prefix : Buffer.concat([prefix, payload]);
    return this.algorithm === 'brotli'
      ? zlib.brotliCompressSync(body, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length } })
      : zlib.deflateRawSync(body, { level: 6 });
  }

  decompress(body: Buffer, maxFrameBytes: number): Buffer {
    try {
      return this.algorithm === 'brotli' ? zlib.brotliDecompressSync(body, { maxOutputLength: maxFrameBytes }) : zlib.inflateRawSync(body, { maxOutputLength: maxFrameBytes });
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
        throw new ErpsFrameTooLargeError(maxFrameBytes + 1, maxFrameBytes);
      }
      throw new ErpsProtocolError(`cannot decompress frame: ${(err as Error).message}`);
    }
  }
}
