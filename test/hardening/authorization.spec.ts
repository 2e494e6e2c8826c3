import { firstValueFrom } from 'rxjs';
import { ErpsAuthorizeRequest, ErpsHandshakeError } from 'nestjs-erps';
import { clientFor } from '../support/apps';
import { startFeaturesServer } from '../support/features-app';
import { waitFor } from '../support/wait';

describe('authorization by peer identity', () => {
  it('authorize(): a denied call gets ERPS_FORBIDDEN and no handler runs; allowed calls go on', async () => {
    const asked: ErpsAuthorizeRequest[] = [];
    const running = await startFeaturesServer({
      authorize: (request) => {
        asked.push(request);
        return !(request.peer?.cn === 'alice' && request.pattern === 'sum');
      },
    });
    const alice = await clientFor(running, {}, 'alice');
    const bob = await clientFor(running, {}, 'bob');
    try {
      const good = Promise.all(Array.from({ length: 30 }, (_, i) => firstValueFrom(bob.send('sum', [i, 1]))));
      await expect(firstValueFrom(alice.send('sum', [1, 2]))).rejects.toMatchObject({ code: 'ERPS_FORBIDDEN', message: expect.stringContaining('"alice" may not call "sum"') });
      await expect(good).resolves.toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(running.probe.calls).toEqual(Array(30).fill('sum')); // only bob's
      await expect(firstValueFrom(alice.send('whoami', {}))).resolves.toMatchObject({ cn: 'alice' });
      expect(asked.find((r) => r.peer?.cn === 'alice')).toMatchObject({ pattern: 'sum', kind: 'call' });
    } finally {
      await Promise.all([alice.close(), bob.close()]);
      await running.close();
    }
  });

  it('authorize() may answer asynchronously, and casts are checked too', async () => {
    const running = await startFeaturesServer({ authorize: async ({ peer, kind }) => kind === 'call' || peer?.cn === 'bob' });
    const alice = await clientFor(running, {}, 'alice');
    const bob = await clientFor(running, {}, 'bob');
    try {
      await firstValueFrom(alice.emit('audit', 'from alice'));
      await firstValueFrom(bob.emit('audit', 'from bob'));
      await waitFor(() => running.probe.events.length === 1);
      await expect(firstValueFrom(alice.send('sum', [2]))).resolves.toBe(2);
      expect(running.probe.events).toEqual(['from bob']);
    } finally {
      await Promise.all([alice.close(), bob.close()]);
      await running.close();
    }
  });

  it('@ErpsAllow({ cn }) lets only listed peers reach the handler', async () => {
    const running = await startFeaturesServer();
    const alice = await clientFor(running, {}, 'alice');
    const bob = await clientFor(running, {}, 'bob');
    try {
      await expect(firstValueFrom(alice.send('bob.only', {}))).rejects.toMatchObject({ code: 'ERPS_FORBIDDEN', message: expect.stringContaining('"alice"') });
      await expect(firstValueFrom(bob.send('bob.only', {}))).resolves.toBe('hello bob');
      expect(running.probe.calls).toEqual(['bob.only']);
    } finally {
      await Promise.all([alice.close(), bob.close()]);
      await running.close();
    }
  });

  it('allowPeers: a peer refused right after TLS gets REJECT "not allowed", no retry, others served', async () => {
    const running = await startFeaturesServer({ allowPeers: (peer) => peer?.cn === 'bob' });
    const alice = await clientFor(running, { reconnect: { minDelayMs: 5, maxDelayMs: 10 } }, 'alice');
    const bob = await clientFor(running, {}, 'bob');
    try {
      const err = await alice.connect().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ErpsHandshakeError);
      expect((err as Error).message).toMatch(/peer "alice" is not allowed to connect/);
      expect(alice.currentStatus).toBe('failed');
      await expect(firstValueFrom(bob.send('sum', [4, 4]))).resolves.toBe(8);
      expect(running.probe.calls).toEqual(['sum']);
      expect(running.server.connections().map((c) => c.peer?.cn)).toEqual(['bob']);
    } finally {
      await Promise.all([alice.close(), bob.close()]);
      await running.close();
    }
  });
});
