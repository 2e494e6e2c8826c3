import { firstValueFrom, take, toArray, lastValueFrom } from 'rxjs';
import type { TLSSocket } from 'node:tls';
import { ErpsClient, ErpsPush } from 'nestjs-erps';
import { clientFor, RunningServer } from './support/apps';
import { startFeaturesServer } from './support/features-app';
import { waitFor } from './support/wait';

describe('server push (Erps Server.push/2 + handle_push)', () => {
  let running: RunningServer;
  let alice: ErpsClient;
  let bob: ErpsClient;

  beforeAll(async () => {
    running = await startFeaturesServer();
    alice = await clientFor(running, { reconnect: { minDelayMs: 5, maxDelayMs: 20 } }, 'alice');
    bob = await clientFor(running, {}, 'bob');
    await Promise.all([alice.connect(), bob.connect()]);
  });

  afterAll(async () => {
    await Promise.all([alice.close(), bob.close()]);
    await running.close();
  });

  it('ctx.push reaches only the calling client, before the reply (per-connection order)', async () => {
    const aliceNotes: ErpsPush[] = [];
    const bobNotes: ErpsPush[] = [];
    const subs = [alice.pushes('note').subscribe((p) => aliceNotes.push(p)), bob.pushes('note').subscribe((p) => bobNotes.push(p))];
    const reply = await firstValueFrom(alice.send('push.me', 5));
    expect(reply).toBe('pushed');
    expect(aliceNotes.map((p) => p.data)).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }, { i: 3 }, { i: 4 }]);
    expect(bobNotes).toEqual([]);
    subs.forEach((s) => s.unsubscribe());
  });

  it('server.connections() lists both peers; server.push targets one connection', async () => {
    const connections = running.server.connections();
    expect(connections.map((c) => c.peer?.cn).sort()).toEqual(['alice', 'bob']);
    const bobConnection = connections.find((c) => c.peer?.cn === 'bob')!;
    expect(bobConnection.connectedAt).toBeInstanceOf(Date);
    const got = firstValueFrom(bob.pushes('direct'));
    expect(running.server.push(bobConnection.connectionId, 'direct', { hello: 'bob' })).toBe(true);
    await expect(got).resolves.toEqual({ pattern: 'direct', data: { hello: 'bob' } });
    expect(running.server.push(999_999, 'direct', {})).toBe(false);
  });

  it('broadcast reaches every client, or those the filter picks by CN', async () => {
    const aliceGot: unknown[] = [];
    const bobGot: unknown[] = [];
    const subs = [alice.pushes('news').subscribe((p) => aliceGot.push(p.data)), bob.pushes('news').subscribe((p) => bobGot.push(p.data))];
    expect(running.server.broadcast('news', 'all')).toBe(2);
    expect(running.server.broadcast('news', 'alice only', (c) => c.peer?.cn === 'alice')).toBe(1);
    await firstValueFrom(alice.send('sum', [1])); // a round trip on each connection flushes the pushes before it
    await firstValueFrom(bob.send('sum', [1]));
    expect(aliceGot).toEqual(['all', 'alice only']);
    expect(bobGot).toEqual(['all']);
    subs.forEach((s) => s.unsubscribe());
  });

  it('broadcast encodes its data once, however many connections it reaches', async () => {
    let reads = 0;
    const value = {
      get n(): number {
        reads++;
        return 7;
      },
      list: ['a', { deep: true }],
    };
    const one = running.server.connections()[0]!.connectionId;
    expect(running.server.push(one, 'once.single', value)).toBe(true);
    const readsForOneEncode = reads;
    expect(readsForOneEncode).toBeGreaterThan(0);
    reads = 0;
    const aliceGot = firstValueFrom(alice.pushes('once'));
    const bobGot = firstValueFrom(bob.pushes('once'));
    expect(running.server.broadcast('once', value)).toBe(2);
    expect(reads).toBe(readsForOneEncode);
    await expect(aliceGot).resolves.toEqual({ pattern: 'once', data: { n: 7, list: ['a', { deep: true }] } });
    await expect(bobGot).resolves.toEqual({ pattern: 'once', data: { n: 7, list: ['a', { deep: true }] } });
  });

  it('carries a push much larger than the MTU', async () => {
    const big = Buffer.alloc(300_000, 7);
    const got = firstValueFrom(alice.pushes<Buffer>('big'));
    running.server.broadcast('big', big, (c) => c.peer?.cn === 'alice');
    const push = await got;
    expect(push.data.equals(big)).toBe(true);
  });

  it('keeps one pushes() stream across a reconnect', async () => {
    const ticks: unknown[] = [];
    const received = lastValueFrom(alice.pushes('tick').pipe(take(2), toArray()));
    const sub = alice.pushes('tick').subscribe((p) => ticks.push(p.data));
    running.server.broadcast('tick', 1, (c) => c.peer?.cn === 'alice');
    await waitFor(() => ticks.length === 1);
    sub.unsubscribe();
    const before = running.server.connections().find((c) => c.peer?.cn === 'alice')!.connectionId;
    alice.unwrap<TLSSocket>().destroy();
    await waitFor(() => alice.currentStatus === 'connected' && running.server.connections().some((c) => c.peer?.cn === 'alice' && c.connectionId !== before));
    running.server.broadcast('tick', 2, (c) => c.peer?.cn === 'alice');
    await expect(received).resolves.toEqual([
      { pattern: 'tick', data: 1 },
      { pattern: 'tick', data: 2 },
    ]);
  });
});
