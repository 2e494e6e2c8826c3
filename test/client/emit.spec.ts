import { firstValueFrom, lastValueFrom, Observable, toArray } from 'rxjs';
import { ErpsClient, ErpsCodecError } from 'nestjs-erps';
import { clientFor, RunningServer, startCalcServer } from '../support/apps';
import { waitFor } from '../support/wait';

/** Everything a subscription sees: the values, then 'complete' or the error. */
function outcome(source: Observable<unknown>): Promise<{ values: unknown[]; end: unknown }> {
  return new Promise((resolve) => {
    const values: unknown[] = [];
    source.subscribe({ next: (value) => values.push(value), error: (end: unknown) => resolve({ values, end }), complete: () => resolve({ values, end: 'complete' }) });
  });
}

describe('ErpsClient.emit(): a hot cast whose outcome every subscriber sees', () => {
  let running: RunningServer;
  let client: ErpsClient;

  beforeAll(async () => {
    running = await startCalcServer({ transport: 'local' });
  });

  afterAll(async () => {
    await running.close();
  });

  beforeEach(() => {
    running.probe.events = [];
  });

  afterEach(async () => {
    await client.close();
  });

  it('while connected: sent without a subscriber; later subscribers, however many, get undefined and complete', async () => {
    client = await clientFor(running);
    await client.connect();
    const cast = client.emit('audit', { n: 1 });
    await waitFor(() => running.probe.events.length === 1);
    expect(running.probe.events).toEqual([{ n: 1 }]);
    await expect(outcome(cast)).resolves.toEqual({ values: [undefined], end: 'complete' });
    await expect(outcome(cast)).resolves.toEqual({ values: [undefined], end: 'complete' });
    await expect(lastValueFrom(cast.pipe(toArray()))).resolves.toEqual([undefined]);
    // Each emit() is one cast, whatever its Observable is subscribed to.
    expect(running.probe.events).toEqual([{ n: 1 }]);
  });

  it('while connected: a cast that cannot be encoded is not sent, and its error reaches every later subscriber', async () => {
    client = await clientFor(running);
    await client.connect();
    const unencodable = {
      get boom(): never {
        throw new Error('no value');
      },
    };
    const cast = client.emit('audit', unencodable);
    const first = await outcome(cast);
    expect(first.values).toEqual([]);
    expect(first.end).toBeInstanceOf(ErpsCodecError);
    await expect(firstValueFrom(cast)).rejects.toBe(first.end);
    await lastValueFrom(client.emit('audit', 'after'));
    await waitFor(() => running.probe.events.length === 1);
    expect(running.probe.events).toEqual(['after']);
  });

  it('before connect(): the cast connects lazily, then reaches a subscriber that came after it was written', async () => {
    client = await clientFor(running);
    const cast = client.emit('audit', 'lazy');
    await waitFor(() => running.probe.events.length === 1);
    expect(running.probe.events).toEqual(['lazy']);
    await expect(outcome(cast)).resolves.toEqual({ values: [undefined], end: 'complete' });
  });

  it('send() stays cold: each subscription is one call, none without a subscriber', async () => {
    client = await clientFor(running);
    await client.connect();
    const call = client.send<number>('sum', [1, 2]);
    await expect(lastValueFrom(call)).resolves.toBe(3);
    await expect(lastValueFrom(call)).resolves.toBe(3);
    expect(running.probe.calls.filter((name) => name === 'sum')).toHaveLength(2);
  });
});
