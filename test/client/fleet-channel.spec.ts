import { ErpsConnectFailedError, ErpsConnectionLostError, ErpsDiscoveryError, ErpsHandshakeError, RejectCode } from 'nestjs-erps';
import { Channel, ErpsDiscoveryEvent } from '../../src/client/channel';
import type { ClientLink } from '../../src/client/client-link';
import type { ErpsEndpointInfo } from '../../src/client/endpoint';
import type { ErpsClientOptions, ErpsEndpointAddress } from '../../src/client/erps-client-options';
import { OutgoingCall } from '../../src/client/outgoing-call';
import { resolveClientConfig } from '../../src/config/client-config';
import { createCodec } from '../../src/protocol/codec';
import { encodeFrame, FrameType } from '../../src/protocol/frame';
import { wirePattern } from '../../src/protocol/message';
import { FakeConnector, FakeServerEnd } from '../support/fake-connector';
import { waitFor } from '../support/wait';

const codec = createCodec('msgpack');
const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
};
const ENDPOINTS: ErpsEndpointAddress[] = [
  { host: '10.0.0.1', port: 4000 },
  { host: '10.0.0.2', port: 4000 },
  { host: '10.0.0.3', port: 4000 },
];

interface Fleet {
  channel: Channel;
  connector: FakeConnector;
  /** The far end of each accepted connection, by host. */
  servers: Map<string, FakeServerEnd[]>;
  endpointEvents: ErpsEndpointInfo[];
  /** Accepts every attempt made so far (and those they lead to) until none is left. */
  acceptAll(): Promise<void>;
}

function fleet(options: Partial<ErpsClientOptions> = {}): Fleet {
  const connector = new FakeConnector();
  const config = resolveClientConfig({ transport: 'tcp', endpoints: ENDPOINTS, keepaliveMs: 0, reconnect: { minDelayMs: 100, maxDelayMs: 1000 }, ...options });
  const channel = new Channel(
    config,
    () => undefined,
    () => undefined,
    connector.connect,
  );
  const servers = new Map<string, FakeServerEnd[]>();
  const endpointEvents: ErpsEndpointInfo[] = [];
  channel.on('endpoint', (info) => endpointEvents.push(info));
  let accepted = 0;
  const acceptAll = async (): Promise<void> => {
    while (accepted < connector.attempts.length) {
      const attempt = connector.attempts[accepted++]!;
      const end = attempt.accept();
      servers.set(attempt.options.host, [...(servers.get(attempt.options.host) ?? []), end]);
      await settle();
    }
  };
  return { channel, connector, servers, endpointEvents, acceptAll };
}

interface Seen {
  values: unknown[];
  error: unknown;
  done: boolean;
}

/** Sends a call the way ErpsClient does: over the picked link. */
function call(channel: Channel, data: unknown = null, options: { timeoutMs?: number; idempotent?: boolean } = {}): { seen: Seen; call: OutgoingCall; link: ClientLink } {
  const seen: Seen = { values: [], error: undefined, done: false };
  const observer = { next: (value: unknown) => seen.values.push(value), error: (err: unknown) => (seen.error = err), complete: () => (seen.done = true) };
  const outgoing = new OutgoingCall(wirePattern('work'), null, data, observer, options.timeoutMs ?? 0, options.idempotent ?? false);
  const link = channel.pick();
  if (link === undefined) throw new Error('no ready link');
  link.call(outgoing);
  return { seen, call: outgoing, link };
}

/** Which server end (by host) holds a CALL frame with this id, last one sent. */
function callsOn(servers: Map<string, FakeServerEnd[]>, host: string): number {
  return (servers.get(host) ?? []).reduce((sum, end) => sum + end.frames.filter((frame) => frame.type === FrameType.CALL).length, 0);
}

function lastCall(end: FakeServerEnd): number {
  const calls = end.frames.filter((frame) => frame.type === FrameType.CALL);
  return calls[calls.length - 1]!.id;
}

async function closed(channel: Channel): Promise<void> {
  const closing = channel.close();
  await settle();
  jest.advanceTimersByTime(2000);
  await closing;
}

describe('Channel over a fleet (fake connector, fake timers)', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());

  it('dials every endpoint; connected with the first ready one; endpoints() and endpoint events tell each state', async () => {
    const { channel, connector, endpointEvents } = fleet();
    const connecting = channel.connect();
    expect(connector.attempts.map((attempt) => attempt.options.host)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3']);
    connector.attempts[1]!.accept();
    await expect(connecting).resolves.toBeUndefined();
    expect(channel.status).toBe('connected');
    connector.attempts[0]!.refuse(new ErpsConnectFailedError('ECONNREFUSED'));
    await settle();
    expect(channel.endpointInfo().map((info) => info.state)).toEqual(['transient-failure', 'ready', 'connecting']);
    expect(channel.endpointInfo()[0]!.lastError).toBeInstanceOf(ErpsConnectFailedError);
    expect(endpointEvents.filter((info) => info.host === '10.0.0.2').map((info) => info.state)).toEqual(['connecting', 'ready']);
    expect(channel.status).toBe('connected');
    await closed(channel);
  });

  it('connect() rejects only once every endpoint failed its first attempt', async () => {
    const { channel, connector } = fleet();
    let outcome: unknown = 'pending';
    channel.connect().then(
      () => (outcome = 'resolved'),
      (err: unknown) => (outcome = err),
    );
    connector.attempts[0]!.refuse(new ErpsConnectFailedError('one'));
    connector.attempts[1]!.refuse(new ErpsConnectFailedError('two'));
    await settle();
    expect(outcome).toBe('pending');
    connector.attempts[2]!.refuse(new ErpsConnectFailedError('three'));
    await settle();
    expect(outcome).toBeInstanceOf(ErpsConnectFailedError);
    expect((outcome as Error).message).toBe('three');
    await closed(channel);
  });

  it('round-robin sends each call to the next endpoint; pick-first keeps to the first', async () => {
    const rr = fleet({ balancing: 'round-robin' });
    void rr.channel.connect();
    await rr.acceptAll();
    for (let i = 0; i < 9; i++) call(rr.channel);
    await settle();
    expect(ENDPOINTS.map(({ host }) => callsOn(rr.servers, host))).toEqual([3, 3, 3]);
    await closed(rr.channel);

    const first = fleet({ balancing: 'pick-first' });
    void first.channel.connect();
    await first.acceptAll();
    for (let i = 0; i < 5; i++) call(first.channel);
    await settle();
    expect(ENDPOINTS.map(({ host }) => callsOn(first.servers, host))).toEqual([5, 0, 0]);
    await closed(first.channel);
  });

  it('least-in-flight sends fewer calls to the endpoint whose calls pile up', async () => {
    const { channel, servers, acceptAll } = fleet();
    void channel.connect();
    await acceptAll();
    // Two endpoints answer each call at once; the third never answers.
    const answered = new Set<unknown>();
    for (let i = 0; i < 300; i++) {
      call(channel);
      await settle();
      for (const host of ['10.0.0.1', '10.0.0.2']) {
        for (const end of servers.get(host)!) {
          for (const frame of end.frames) {
            if (frame.type !== FrameType.CALL || answered.has(frame)) continue;
            answered.add(frame);
            end.write(encodeFrame(FrameType.REPLY, 0, frame.id, codec.encode(1)));
          }
        }
      }
      await settle();
    }
    const slow = callsOn(servers, '10.0.0.3');
    const fast = callsOn(servers, '10.0.0.1') + callsOn(servers, '10.0.0.2');
    expect(slow).toBeLessThan(fast / 10);
    expect(channel.endpointInfo()[2]!.inFlight).toBe(slow);
    await closed(channel);
  });

  it('an endpoint whose connection dies gets no new call at once; the client stays connected and redials it', async () => {
    const { channel, connector, servers, acceptAll } = fleet({ balancing: 'round-robin' });
    void channel.connect();
    await acceptAll();
    servers.get('10.0.0.2')![0]!.socket.destroy();
    await settle();
    expect(channel.status).toBe('connected');
    expect(channel.endpointInfo()[1]!.state).toBe('transient-failure');
    for (let i = 0; i < 6; i++) call(channel);
    await settle();
    expect(ENDPOINTS.map(({ host }) => callsOn(servers, host))).toEqual([3, 0, 3]);
    jest.advanceTimersByTime(100);
    expect(connector.last.options.host).toBe('10.0.0.2');
    await closed(channel);
  });

  it('a call refused before dispatch (ERPS_BUSY, ERPS_GOAWAY) is sent to another endpoint and answered there', async () => {
    const { channel, servers, acceptAll } = fleet({ balancing: 'pick-first' });
    void channel.connect();
    await acceptAll();
    const { seen } = call(channel, 'x');
    await settle();
    const first = servers.get('10.0.0.1')![0]!;
    first.write(encodeFrame(FrameType.ERROR, 0, lastCall(first), codec.encode({ status: 'error', code: 'ERPS_BUSY', message: 'busy' })));
    await settle();
    expect(seen.error).toBeUndefined();
    const elsewhere = ['10.0.0.2', '10.0.0.3'].map((host) => servers.get(host)![0]!).find((end) => end.frames.some((frame) => frame.type === FrameType.CALL))!;
    elsewhere.write(encodeFrame(FrameType.REPLY, 0, lastCall(elsewhere), codec.encode('done')));
    await settle();
    expect(seen).toMatchObject({ values: ['done'], done: true });
    // Any other error reply is an answer: it goes to the caller.
    const second = call(channel, 'y');
    await settle();
    first.write(encodeFrame(FrameType.ERROR, 0, lastCall(first), codec.encode({ status: 'error', message: 'Internal server error' })));
    await settle();
    expect(second.seen.error).toEqual({ status: 'error', message: 'Internal server error' });
    await closed(channel);
  });

  it('a written call whose connection dies fails with ErpsConnectionLostError; an idempotent one is retried elsewhere, maxRetries times', async () => {
    const { channel, servers, acceptAll } = fleet({ balancing: 'round-robin', maxRetries: 1 });
    void channel.connect();
    await acceptAll();
    const plain = call(channel, 'plain');
    const idempotent = call(channel, 'again', { idempotent: true, timeoutMs: 5000 });
    await settle();
    const plainHost = ENDPOINTS.find(({ host }) => callsOn(servers, host) > 0)!.host;
    servers.get(plainHost)![0]!.socket.destroy();
    await settle();
    expect(plain.seen.error).toBeInstanceOf(ErpsConnectionLostError);
    const idempotentHost = ENDPOINTS.find(({ host }) => host !== plainHost && callsOn(servers, host) > 0)!.host;
    servers.get(idempotentHost)![0]!.socket.destroy();
    await settle();
    expect(idempotent.seen.error).toBeUndefined();
    expect(idempotent.call.retries).toBe(1);
    const third = ENDPOINTS.find(({ host }) => host !== plainHost && host !== idempotentHost)!.host;
    expect(callsOn(servers, third)).toBe(1);
    servers.get(third)![0]!.socket.destroy();
    await settle();
    // maxRetries 1 used up (and no endpoint left): the caller gets the loss.
    expect(idempotent.seen.error).toBeInstanceOf(ErpsConnectionLostError);
    await closed(channel);
  });

  it('outlier detection ejects an endpoint after consecutive timeouts, never more than maxEjectedPercent, and takes it back', async () => {
    jest.useRealTimers(); // call deadlines run on perf_hooks' clock, which fake timers do not move
    const { channel, servers, acceptAll } = fleet({
      balancing: 'round-robin',
      outlierDetection: { consecutiveFailures: 2, baseEjectionMs: 300, maxEjectedPercent: 34 },
    });
    void channel.connect();
    await acceptAll();
    for (let i = 0; i < 6; i++) call(channel, null, { timeoutMs: 20 });
    await settle();
    const end = servers.get('10.0.0.1')![0]!;
    for (const frame of end.frames) if (frame.type === FrameType.CALL) end.write(encodeFrame(FrameType.REPLY, 0, frame.id, codec.encode(1)));
    await waitFor(() => channel.stats().inFlight === 0);
    // 10.0.0.2 and 10.0.0.3 each timed out twice, but a third of three is one endpoint.
    const states = channel.endpointInfo().map((info) => info.state);
    expect(states.filter((state) => state === 'ejected')).toHaveLength(1);
    expect(states[0]).toBe('ready');
    const ejected = channel.endpointInfo().find((info) => info.state === 'ejected')!.host;
    const before = callsOn(servers, ejected);
    for (let i = 0; i < 4; i++) call(channel, null, { timeoutMs: 1000 });
    await settle();
    expect(callsOn(servers, ejected)).toBe(before);
    await waitFor(() => channel.endpointInfo().find((info) => info.host === ejected)!.state === 'ready');
    for (const ends of servers.values()) for (const server of ends) server.socket.destroy();
    await channel.close();
  });

  it('a call still queued on a connection that dies never left: it is sent to another endpoint', async () => {
    const { channel, servers, acceptAll } = fleet({ balancing: 'pick-first' });
    void channel.connect();
    await acceptAll();
    const { seen, link } = call(channel, 'queued');
    link.connection.socket.destroy(); // before the write this tick would have made
    await settle();
    expect(callsOn(servers, '10.0.0.1')).toBe(0);
    expect(seen.error).toBeUndefined();
    const end = servers.get('10.0.0.2')![0]!;
    end.write(encodeFrame(FrameType.REPLY, 0, lastCall(end), codec.encode('ok')));
    await settle();
    expect(seen.values).toEqual(['ok']);
    await closed(channel);
  });

  it('a REJECT that would come again stops that endpoint only; the client fails when every endpoint did', async () => {
    const { channel, connector } = fleet();
    const connecting = channel.connect();
    const reject = (): ErpsHandshakeError => new ErpsHandshakeError('version mismatch', RejectCode.VERSION);
    connector.attempts[0]!.refuse(reject());
    connector.attempts[1]!.refuse(reject());
    await settle();
    expect(channel.status).not.toBe('failed');
    connector.attempts[2]!.refuse(reject());
    await settle();
    await expect(connecting).rejects.toBeInstanceOf(ErpsHandshakeError);
    expect(channel.status).toBe('failed');
    jest.advanceTimersByTime(10_000);
    expect(connector.attempts).toHaveLength(3);
    await closed(channel);
  });
});

describe('Channel with discovery (custom resolver, fake timers)', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());

  function discovered(answers: Array<ErpsEndpointAddress[] | Error>): Fleet & { events: ErpsDiscoveryEvent[]; resolutions: () => number } {
    let resolutions = 0;
    const resolve = (): Promise<ErpsEndpointAddress[]> => {
      const answer = answers[Math.min(resolutions++, answers.length - 1)]!;
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    };
    const built = fleet({ endpoints: undefined, discovery: { resolve, refreshMs: 1000 } });
    const events: ErpsDiscoveryEvent[] = [];
    built.channel.on('discovery', (event) => events.push(event));
    return { ...built, events, resolutions: () => resolutions };
  }

  it('follows the registry: new endpoints are dialled, gone ones retired after their calls finish', async () => {
    const { channel, connector, servers, acceptAll, events } = discovered([ENDPOINTS.slice(0, 2), ENDPOINTS.slice(1, 3)]);
    void channel.connect();
    await settle();
    await acceptAll();
    expect(channel.endpointInfo().map((info) => info.host)).toEqual(['10.0.0.1', '10.0.0.2']);
    const inFlight = call(channel);
    await settle();
    const busyHost = ENDPOINTS.find(({ host }) => callsOn(servers, host) > 0)!.host;
    jest.advanceTimersByTime(1000);
    await settle();
    await acceptAll();
    expect(events.map((event) => [event.added.map((a) => a.host), event.removed.map((a) => a.host)])).toEqual([
      [['10.0.0.1', '10.0.0.2'], []],
      [['10.0.0.3'], ['10.0.0.1']],
    ]);
    expect(channel.endpointInfo().map((info) => info.host)).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(connector.last.options.host).toBe('10.0.0.3');
    // The retired endpoint's call still gets its reply, then its connection closes.
    const end = servers.get(busyHost)![0]!;
    end.write(encodeFrame(FrameType.REPLY, 0, lastCall(end), codec.encode('late but fine')));
    await settle();
    expect(inFlight.seen.values).toEqual(['late but fine']);
    await closed(channel);
  });

  it('a failing resolution keeps the last list and is reported; an empty answer counts as a failure', async () => {
    const { channel, acceptAll, events } = discovered([ENDPOINTS.slice(0, 2), new Error('registry down'), []]);
    void channel.connect();
    await settle();
    await acceptAll();
    jest.advanceTimersByTime(1000);
    await settle();
    jest.advanceTimersByTime(1000);
    await settle();
    expect(events.slice(1).map((event) => event.error)).toEqual([expect.any(ErpsDiscoveryError), expect.any(ErpsDiscoveryError)]);
    expect(events[1]!.error!.message).toContain('registry down');
    expect(events[2]!.error!.message).toContain('no endpoint');
    expect(channel.endpointInfo().map((info) => info.host)).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(channel.status).toBe('connected');
    await closed(channel);
  });

  it('connect() rejects with ErpsDiscoveryError while nothing was ever found, and retries the resolution', async () => {
    const { channel, acceptAll, resolutions } = discovered([new Error('nxdomain'), ENDPOINTS.slice(0, 1)]);
    await expect(channel.connect()).rejects.toBeInstanceOf(ErpsDiscoveryError);
    jest.advanceTimersByTime(1000);
    await settle();
    expect(resolutions()).toBe(2);
    await acceptAll();
    expect(channel.status).toBe('connected');
    await closed(channel);
  });
});
