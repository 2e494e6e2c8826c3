import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { ErpsClient } from 'nestjs-erps';
import { clientFor, RunningServer, startCalcServer } from './support/apps';
import { waitFor } from './support/wait';

// The same expectations over mutual TLS and over the in-process local transport, and with direct dispatch on
// (handlers without guards, pipes or interceptors called without Nest's per-call pipeline; ErpsExceptionFilter is global).
describe.each([
  ['tls', 'Nest pipeline'],
  ['local', 'Nest pipeline'],
  ['tls', 'direct dispatch'],
] as const)('ErpsServer + ErpsClient over %s, %s (through @nestjs/testing)', (transport, dispatch) => {
  let running: RunningServer;
  let client: ErpsClient;

  beforeAll(async () => {
    // Room for the 8 MiB round trip below (the default frame limit is 4 MiB).
    running = await startCalcServer({ transport, maxFrameBytes: 16 * 1024 * 1024 });
    if (dispatch === 'direct dispatch') running.server.enableDirectDispatch(running.app);
    client = await clientFor(running, { maxFrameBytes: 16 * 1024 * 1024 });
    await client.connect();
  });

  afterAll(async () => {
    await client.close();
    await running.close();
  });

  it('dispatches as configured: direct only where no guard, pipe or interceptor applies', () => {
    const plan = new Map(running.server.dispatchPlan().map((entry) => [entry.pattern, entry]));
    expect(plan.get('sum')?.direct).toBe(dispatch === 'direct dispatch');
    expect(plan.get('audit')).toMatchObject({ kind: 'event', direct: dispatch === 'direct dispatch' });
    expect(plan.get('user.create')).toMatchObject({ direct: false, reason: expect.stringMatching(/pipe|enableDirectDispatch/) });
  });

  it('answers a synchronous handler', async () => {
    await expect(firstValueFrom(client.send('sum', [1, 2, 3]))).resolves.toBe(6);
  });

  it('answers an async handler', async () => {
    await expect(firstValueFrom(client.send('sum.async', [4, 5]))).resolves.toBe(9);
  });

  it('streams every value of an Observable, in order', async () => {
    const values = await lastValueFrom(client.send({ version: 1, cmd: 'count' }, 5).pipe(toArray()));
    expect(values).toEqual([1, 2, 3, 4, 5]);
    await expect(lastValueFrom(client.send('of3', {}).pipe(toArray()))).resolves.toEqual(['a', 'b', 'c']);
  });

  it('completes with no value when the handler stream is empty', async () => {
    await expect(lastValueFrom(client.send('nothing', {}).pipe(toArray()))).resolves.toEqual([]);
  });

  it('delivers an event to its @EventPattern', async () => {
    await lastValueFrom(client.emit('audit', { who: 'alice', what: 'login' }));
    await waitFor(() => running.probe.events.length > 0);
    expect(running.probe.events).toContainEqual({ who: 'alice', what: 'login' });
  });

  it('errors on an unknown pattern, naming it', async () => {
    await expect(firstValueFrom(client.send('no.such.pattern', 1))).rejects.toMatchObject({
      status: 'error',
      message: expect.stringContaining('"no.such.pattern"'),
    });
  });

  it('delivers an RpcException object intact', async () => {
    await expect(firstValueFrom(client.send('fail.rpc', {}))).rejects.toEqual({ code: 'E_CALC', message: 'calculator says no', details: { x: 1 } });
  });

  it('hides other errors behind "Internal server error"', async () => {
    await expect(firstValueFrom(client.send('fail.crash', {}))).rejects.toEqual({ status: 'error', message: 'Internal server error' });
  });

  it('carries ValidationPipe messages to the caller', async () => {
    const err = await firstValueFrom(client.send('user.create', { name: 'x', age: -1 })).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 'error', statusCode: 400 });
    const messages = (err as { message: string[] }).message;
    expect(messages).toEqual(expect.arrayContaining([expect.stringContaining('name must be longer'), expect.stringContaining('age must not be less than 0')]));
    await expect(firstValueFrom(client.send('user.create', { name: 'alice', age: 30 }))).resolves.toBe('created alice');
  });

  it('answers 1,000 concurrent calls on one client correctly', async () => {
    const calls = Array.from({ length: 1000 }, (_, i) => firstValueFrom(client.send('sum', [i, i, 1])));
    const results = await Promise.all(calls);
    results.forEach((result, i) => expect(result).toBe(2 * i + 1));
  });

  it('round-trips an 8 MiB payload', async () => {
    const big = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    const echoed = await firstValueFrom(client.send<Buffer>('echo', big));
    expect(Buffer.isBuffer(echoed)).toBe(true);
    expect(echoed.length).toBe(big.length);
    expect(echoed.equals(big)).toBe(true);
  });

  it('keeps Buffers, Dates, Maps, BigInts and nested data with the default codec', async () => {
    const value = {
      buf: Buffer.from([0, 1, 2, 255]),
      when: new Date('2026-01-02T03:04:05.006Z'),
      map: new Map<string, unknown>([['k', { deep: [1, 'two', null] }]]),
      big: 2n ** 70n,
      nested: { a: [{ b: { c: [true, false, 1.5] } }] },
    };
    const echoed = await firstValueFrom(client.send<typeof value>('echo', value));
    expect(Buffer.isBuffer(echoed.buf)).toBe(true);
    expect(echoed.buf.equals(value.buf)).toBe(true);
    expect(echoed.when).toBeInstanceOf(Date);
    expect(echoed.when.toISOString()).toBe(value.when.toISOString());
    expect(echoed.map).toBeInstanceOf(Map);
    expect(echoed.map.get('k')).toEqual({ deep: [1, 'two', null] });
    expect(echoed.big).toBe(2n ** 70n);
    expect(echoed.nested).toEqual(value.nested);
  });

  it('gives handlers the caller identity and origin on the context', async () => {
    const expected = transport === 'tls' ? { cn: 'alice', remote: true } : { cn: undefined, remote: false };
    await expect(firstValueFrom(client.send('whoami', {}))).resolves.toMatchObject({ ...expected, pattern: 'whoami' });
  });

  it('carries a top-level Buffer as raw bytes, with either codec', async () => {
    const bytes = Buffer.from([0, 1, 2, 3, 254, 255]);
    const echoed = await firstValueFrom(client.send<Buffer>('echo', bytes));
    expect(Buffer.isBuffer(echoed)).toBe(true);
    expect(echoed.equals(bytes)).toBe(true);
    if (transport !== 'tls') return;
    const jsonServer = await startCalcServer({ codec: 'json' });
    const jsonClient = await clientFor(jsonServer, { codec: 'json' });
    try {
      const back = await firstValueFrom(jsonClient.send<Buffer>('echo', bytes));
      expect(Buffer.isBuffer(back) && back.equals(bytes)).toBe(true);
    } finally {
      await jsonClient.close();
      await jsonServer.close();
    }
  });

  it('fails an unserializable payload with a typed codec error, and goes on', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(firstValueFrom(client.send('echo', { s: Symbol('x') }))).rejects.toMatchObject({ code: 'ERPS_CODEC', name: 'ErpsCodecError' });
    await expect(firstValueFrom(client.send('echo', cyclic))).rejects.toMatchObject({ code: 'ERPS_CODEC' });
    await expect(firstValueFrom(client.send('sum', [2, 2]))).resolves.toBe(4);
  });
});
