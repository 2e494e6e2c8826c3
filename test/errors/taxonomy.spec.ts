import {
  ErpsCodecError,
  ErpsConnectFailedError,
  ErpsConnectionLostError,
  ErpsConnectTimeoutError,
  ErpsDisconnectedError,
  ErpsError,
  ErpsFrameTooLargeError,
  ErpsHandshakeError,
  ErpsQueueFullError,
  ErpsReconnectGaveUpError,
  ErpsSlowConsumerError,
  ErpsTimeoutError,
  isRetryable,
  RejectCode,
} from 'nestjs-erps';
import * as api from 'nestjs-erps';
import { errorReply } from '../../src/errors/index';

describe('error taxonomy', () => {
  it('retryable: true exactly when the call provably never reached a handler and may succeed on another try', () => {
    const never = [
      new ErpsDisconnectedError(),
      new ErpsConnectFailedError('refused'),
      new ErpsConnectTimeoutError('slow'),
      new ErpsReconnectGaveUpError('gave up'),
      new ErpsQueueFullError(10),
      new ErpsSlowConsumerError('not reading', 10, 5),
      new ErpsTimeoutError(100, new Error('ECONNREFUSED')),
      new ErpsHandshakeError('server full', RejectCode.SERVER_FULL, true),
    ];
    const mayHaveRunOrWouldFailAgain = [
      new ErpsConnectionLostError(),
      new ErpsTimeoutError(100),
      new ErpsCodecError('bad'),
      new ErpsFrameTooLargeError(10, 5),
      new ErpsHandshakeError('identifier mismatch', RejectCode.IDENTIFIER),
    ];
    for (const err of never) expect([err.name, err.retryable, isRetryable(err)]).toEqual([err.name, true, true]);
    for (const err of mayHaveRunOrWouldFailAgain) expect([err.name, err.retryable, isRetryable(err)]).toEqual([err.name, false, false]);
  });

  it('error replies: one builder, Nest-shaped; BUSY and GOAWAY are retryable, refusals that would come again are not', () => {
    expect(errorReply()).toEqual({ status: 'error', message: 'Internal server error' });
    expect(errorReply('ERPS_BUSY', 'too many')).toEqual({ status: 'error', code: 'ERPS_BUSY', message: 'too many' });
    expect(isRetryable(errorReply('ERPS_BUSY', 'x'))).toBe(true);
    expect(isRetryable(errorReply('ERPS_GOAWAY', 'x'))).toBe(true);
    for (const code of ['ERPS_NO_HANDLER', 'ERPS_FORBIDDEN', 'ERPS_CODEC', 'ERPS_HEADERS'] as const) expect(isRetryable(errorReply(code, 'x'))).toBe(false);
    expect(isRetryable(errorReply())).toBe(false);
    expect(isRetryable({ code: 'ERPS_BUSY' })).toBe(false); // not an error reply
    expect(isRetryable(null)).toBe(false);
  });

  it('the situations of "not connected" are classes of their own, all ERPS_DISCONNECTED', () => {
    for (const err of [new ErpsConnectFailedError('x'), new ErpsConnectTimeoutError('x'), new ErpsReconnectGaveUpError('x')]) {
      expect(err).toBeInstanceOf(ErpsDisconnectedError);
      expect(err).toBeInstanceOf(ErpsError);
      expect(err.code).toBe('ERPS_DISCONNECTED');
      expect(err.name).toBe(err.constructor.name);
    }
  });

  it('the public surface exports RejectCode and no internal helpers', () => {
    expect(api.RejectCode.CERTIFICATE).toBe(9);
    expect('describeError' in api).toBe(false);
    expect('errorReply' in api).toBe(false);
  });
});
