import { ErpsConnectFailedError, ErpsHandshakeError, ErpsReconnectGaveUpError, ErpsTimeoutError, RejectCode } from 'nestjs-erps';
import { Channel, ErpsClientStatus, ErpsReconnectingEvent } from '../../src/client/channel';
import { resolveClientConfig } from '../../src/config/client-config';
import type { ErpsClientOptions } from '../../src/client/erps-client-options';
import { FakeConnector } from '../support/fake-connector';

/** Lets promise callbacks and stream events run (only timers are faked; streams need nextTick and setImmediate). */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
};

function channelWith(options: Partial<ErpsClientOptions> = {}): { channel: Channel; connector: FakeConnector; statuses: ErpsClientStatus[]; reconnecting: ErpsReconnectingEvent[] } {
  const connector = new FakeConnector();
  const statuses: ErpsClientStatus[] = [];
  const reconnecting: ErpsReconnectingEvent[] = [];
  const config = resolveClientConfig({ transport: 'tcp', port: 4000, keepaliveMs: 0, reconnect: { minDelayMs: 100, maxDelayMs: 1000 }, ...options });
  const channel = new Channel(
    config,
    () => undefined,
    (status) => statuses.push(status),
    connector.connect,
  );
  channel.on('reconnecting', (event) => reconnecting.push(event));
  return { channel, connector, statuses, reconnecting };
}

/** close() ends sockets cleanly and waits for them; a peer that never ends its side is cut after 2 s (a faked timer). */
async function closed(channel: Channel): Promise<void> {
  const closing = channel.close();
  await settle();
  jest.advanceTimersByTime(2000);
  await closing;
}

const refused = (): Error => new ErpsConnectFailedError('cannot connect: ECONNREFUSED');

describe('Channel: the client state machine over one endpoint (fake connector, fake timers)', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());

  it('connects: idle → connecting → connected, and connect() is shared by concurrent callers', async () => {
    const { channel, connector, statuses } = channelWith();
    const first = channel.connect();
    const second = channel.connect();
    expect(connector.attempts).toHaveLength(1);
    connector.last.accept();
    await expect(Promise.all([first, second])).resolves.toEqual([undefined, undefined]);
    expect(statuses).toEqual(['connecting', 'connected']);
    expect(channel.pick()).toBeDefined();
    await closed(channel);
  });

  it('a failed attempt is retried after a backoff delay; the reconnecting event counts attempts; success resets them', async () => {
    const { channel, connector, statuses, reconnecting } = channelWith();
    const connecting = channel.connect();
    connector.last.refuse(refused());
    await expect(connecting).rejects.toBeInstanceOf(ErpsConnectFailedError);
    await settle();
    expect(channel.status).toBe('reconnecting');
    expect(reconnecting).toEqual([{ attempt: 1, delayMs: expect.any(Number), error: expect.any(ErpsConnectFailedError) }]);
    expect(reconnecting[0]!.delayMs).toBeLessThanOrEqual(100);
    jest.advanceTimersByTime(100);
    expect(connector.attempts).toHaveLength(2);
    connector.last.refuse(refused());
    await settle();
    expect(reconnecting.map((event) => event.attempt)).toEqual([1, 2]);
    expect(reconnecting[1]!.delayMs).toBeLessThanOrEqual(200); // the ceiling doubles
    jest.advanceTimersByTime(200);
    connector.last.accept();
    await settle();
    expect(channel.status).toBe('connected');
    expect(statuses).toEqual(['connecting', 'reconnecting', 'connected']);
    await closed(channel);
  });

  it('a REJECT that would come again fails for good: status failed, error event, queued calls fail', async () => {
    const { channel, connector } = channelWith({ waitForReady: true });
    const errors: Error[] = [];
    channel.on('error', (err) => errors.push(err));
    const failed: Error[] = [];
    channel.route({ start: () => undefined, fail: (err) => failed.push(err) }, true, 0, () => undefined);
    connector.last.refuse(new ErpsHandshakeError('identifier mismatch', RejectCode.IDENTIFIER));
    await settle();
    expect(channel.status).toBe('failed');
    expect(errors).toHaveLength(1);
    expect(failed).toEqual([errors[0]]);
    jest.advanceTimersByTime(10_000);
    expect(connector.attempts).toHaveLength(1); // no more retries
    await expect(channel.connect()).rejects.toBe(errors[0]);
  });

  it('"server full" passes: retried, not failed', async () => {
    const { channel, connector } = channelWith();
    channel.connect().catch(() => undefined);
    connector.last.refuse(new ErpsHandshakeError('server full', RejectCode.SERVER_FULL, true));
    await settle();
    expect(channel.status).toBe('reconnecting');
    await closed(channel);
  });

  it('gives up after reconnect.maxAttempts with ErpsReconnectGaveUpError', async () => {
    const { channel, connector } = channelWith({ reconnect: { minDelayMs: 10, maxDelayMs: 10, maxAttempts: 2 } });
    const errors: Error[] = [];
    channel.on('error', (err) => errors.push(err));
    channel.connect().catch(() => undefined);
    for (let i = 0; i < 3; i++) {
      connector.last.refuse(refused());
      await settle();
      jest.advanceTimersByTime(10);
    }
    expect(channel.status).toBe('failed');
    expect(errors[0]).toBeInstanceOf(ErpsReconnectGaveUpError);
    expect((errors[0] as Error).cause).toBeInstanceOf(ErpsConnectFailedError);
  });

  it('waitForReady: calls wait for the connection and start on it in order; a wait past timeoutMs names the last connect error', async () => {
    const { channel, connector } = channelWith();
    const started: number[] = [];
    const failed: Error[] = [];
    for (const n of [1, 2]) channel.route({ start: () => started.push(n), fail: (err) => failed.push(err) }, true, 0, () => undefined);
    channel.route({ start: () => started.push(3), fail: (err) => failed.push(err) }, true, 500, () => undefined);
    expect(channel.stats().queued).toBe(3);
    connector.last.refuse(refused());
    await settle();
    jest.advanceTimersByTime(500);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toBeInstanceOf(ErpsTimeoutError);
    expect((failed[0] as ErpsTimeoutError).retryable).toBe(true);
    expect(failed[0]!.message).toMatch(/last connect error: cannot connect: ECONNREFUSED/);
    connector.last.accept();
    await settle();
    expect(started).toEqual([1, 2]);
    expect(channel.stats().queued).toBe(0);
    await closed(channel);
  });

  it('reconnect: false — a lost connection is not redialled', async () => {
    const { channel, connector } = channelWith({ reconnect: false });
    channel.connect().catch(() => undefined);
    const server = connector.last.accept();
    await settle();
    expect(channel.status).toBe('connected');
    server.socket.destroy();
    await settle();
    jest.advanceTimersByTime(10_000);
    expect(channel.status).toBe('disconnected');
    expect(connector.attempts).toHaveLength(1);
  });

  it('a lost connection is redialled (disconnected → reconnecting → connected)', async () => {
    const { channel, connector, statuses } = channelWith();
    channel.connect().catch(() => undefined);
    const server = connector.last.accept();
    await settle();
    server.socket.destroy();
    await settle();
    expect(statuses.slice(-2)).toEqual(['disconnected', 'reconnecting']);
    jest.advanceTimersByTime(100);
    connector.last.accept();
    await settle();
    expect(channel.status).toBe('connected');
    await closed(channel);
  });
});
