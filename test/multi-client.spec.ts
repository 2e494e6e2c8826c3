import { firstValueFrom } from 'rxjs';
import { ErpsClient } from 'nestjs-erps';
import { calcClient, RunningServer, startCalcServer } from './support/apps';

describe('two clients on one daemon', () => {
  let running: RunningServer;
  let alice: ErpsClient;
  let bob: ErpsClient;

  beforeAll(async () => {
    running = await startCalcServer();
    alice = await calcClient(running.port, {}, 'alice');
    bob = await calcClient(running.port, {}, 'bob');
    await Promise.all([alice.connect(), bob.connect()]);
  });

  afterAll(async () => {
    await Promise.all([alice.close(), bob.close()]);
    await running.close();
  });

  it('each handler call sees its own client certificate CN', async () => {
    const calls = Array.from({ length: 40 }, (_, i) => {
      const client = i % 2 === 0 ? alice : bob;
      return firstValueFrom(client.send<{ cn: string }>('whoami', {})).then((reply) => [i % 2 === 0 ? 'alice' : 'bob', reply.cn]);
    });
    for (const [expected, seen] of await Promise.all(calls)) expect(seen).toBe(expected);
    expect(running.probe.peers.filter((cn) => cn === 'alice')).toHaveLength(20);
    expect(running.probe.peers.filter((cn) => cn === 'bob')).toHaveLength(20);
  });

  it('lists both connections with their identities', () => {
    const connections = running.server.connections();
    expect(connections.map((c) => c.peer?.cn).sort()).toEqual(['alice', 'bob']);
    for (const connection of connections) {
      expect(connection.remote).toBe(true);
      expect(connection.remoteAddress).toMatch(/127\.0\.0\.1/);
      expect(connection.peer?.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      expect(connection.peer?.issuerCn).toBe('nestjs-erps dev CA');
    }
  });
});
