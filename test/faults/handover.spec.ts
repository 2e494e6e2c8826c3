import { firstValueFrom } from 'rxjs';
import { ErpsSessionInfo } from 'nestjs-erps';
import { calcClient, startCalcServer } from '../support/apps';
import { testCertificates } from '../support/certs';
import { rawTlsSocket } from '../support/raw-tls';

describe('connection hand-overs', () => {
  it("a PUSH right behind WELCOME (pushed from the server's connection event) reaches the client, which stays healthy", async () => {
    const running = await startCalcServer();
    running.server.on('connection', (info: ErpsSessionInfo) => running.server.push(info.connectionId, 'welcome', `hi ${info.peer?.cn}`));
    const client = await calcClient(running.port);
    try {
      const welcome = firstValueFrom(client.pushes<string>('welcome'));
      await client.connect();
      await expect(welcome).resolves.toEqual({ pattern: 'welcome', data: 'hi alice' });
      await expect(firstValueFrom(client.send('sum', [1, 2]))).resolves.toBe(3);
      expect(client.currentStatus).toBe('connected');
    } finally {
      await client.close();
      await running.close();
    }
  });

  it('close() does not wait on a connection still in its handshake, and refuses new HELLOs while draining', async () => {
    const running = await startCalcServer({ drainTimeoutMs: 10_000 });
    const certs = await testCertificates();
    const silent = rawTlsSocket(running.port, certs.clients.alice);
    silent.on('error', () => undefined);
    const replies: Buffer[] = [];
    silent.on('data', (chunk: Buffer) => replies.push(chunk));
    await new Promise((resolve) => silent.once('secureConnect', resolve));
    await new Promise((resolve) => setTimeout(resolve, 20)); // the server has its session now
    const start = Date.now();
    await running.close();
    expect(Date.now() - start).toBeLessThan(3000);
    const rejectFrame = Buffer.concat(replies);
    expect(rejectFrame[4]).toBe(0x03); // REJECT
    expect(rejectFrame[10]).toBe(8); // SHUTTING_DOWN
    silent.destroy();
  });
});
