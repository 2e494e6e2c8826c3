import { AsyncLocalStorage } from 'node:async_hooks';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { ErpsClient, ErpsHeadersError, ErpsRecordBuilder, ErpsTimeoutError, MAX_HEADERS } from 'nestjs-erps';
import { clientFor, RunningServer } from './support/apps';
import { waitFor } from './support/wait';
import { startFeaturesServer } from './support/features-app';
import { serverStorage, Universe } from './support/features.controller';

describe('per-message headers (ErpsRecordBuilder, client defaults, Nest packet.metadata)', () => {
  let running: RunningServer;
  let client: ErpsClient;

  beforeAll(async () => {
    running = await startFeaturesServer();
    client = await clientFor(running, { headers: { tenant: 'acme', lang: 'en' } });
  });

  afterAll(async () => {
    await client.close();
    await running.close();
  });

  it('sends the client default headers', async () => {
    await expect(firstValueFrom(client.send('headers', {}))).resolves.toEqual({ tenant: 'acme', lang: 'en' });
  });

  it('merges record headers over the defaults', async () => {
    const record = new ErpsRecordBuilder({}).setHeaders({ lang: 'fr', 'x-request-id': 'r-1' }).build();
    await expect(firstValueFrom(client.send('headers', record))).resolves.toEqual({ tenant: 'acme', lang: 'fr', 'x-request-id': 'r-1' });
  });

  it('applies record options (timeoutMs) to that call only', async () => {
    const record = new ErpsRecordBuilder(300).setOptions({ timeoutMs: 40 }).build();
    await expect(firstValueFrom(client.send('slow', record))).rejects.toBeInstanceOf(ErpsTimeoutError);
    await expect(firstValueFrom(client.send('slow', 10))).resolves.toBe('done');
  });

  it('carries Nest packet.metadata set by a dispatch hook', async () => {
    const hooked = await clientFor(running);
    const setHook = (hooked as unknown as { setOnDispatchHook?: (hook: (packet: { metadata?: Record<string, string> }) => void) => void }).setOnDispatchHook;
    if (setHook === undefined) return; // Nest 11 has no dispatch hook
    setHook.call(hooked, (packet) => {
      packet.metadata = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };
    });
    try {
      await expect(firstValueFrom(hooked.send('headers', {}))).resolves.toEqual({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    } finally {
      await hooked.close();
    }
  });

  it('refuses headers past the documented limits, and reserved names, with ErpsHeadersError', async () => {
    const tooMany = Object.fromEntries(Array.from({ length: MAX_HEADERS + 1 }, (_, i) => [`h${i}`, 'v']));
    for (const headers of [tooMany, { 'erps-context': 'x' }, { 'bad name': 'v' }, { big: 'x'.repeat(9000) }]) {
      const record = new ErpsRecordBuilder({}).setHeaders(headers).build();
      await expect(firstValueFrom(client.send('headers', record))).rejects.toBeInstanceOf(ErpsHeadersError);
    }
    expect(() => new ErpsClient({ port: 1, transport: 'tcp', headers: { 'bad name': 'v' } })).toThrow(/headers/);
  });
});

describe("ErpsContext.getMetadata(), as handlers written for Nest's TcpContext call it", () => {
  let running: RunningServer;
  let plain: ErpsClient;
  let withDefaults: ErpsClient;

  beforeAll(async () => {
    running = await startFeaturesServer();
    plain = await clientFor(running);
    withDefaults = await clientFor(running, { headers: { tenant: 'acme' } });
  });

  afterAll(async () => {
    await Promise.all([plain.close(), withDefaults.close()]);
    await running.close();
  });

  it('is undefined for a call that carried no headers', async () => {
    await expect(firstValueFrom(plain.send('metadata', {}))).resolves.toBe('none');
  });

  it("is the call's headers: client defaults merged with the record's", async () => {
    await expect(firstValueFrom(withDefaults.send('metadata', {}))).resolves.toEqual({ tenant: 'acme' });
    const record = new ErpsRecordBuilder({}).setHeaders({ 'x-request-id': 'r-7' }).build();
    await expect(firstValueFrom(withDefaults.send('metadata', record))).resolves.toEqual({ tenant: 'acme', 'x-request-id': 'r-7' });
    await expect(firstValueFrom(plain.send('metadata', record))).resolves.toEqual({ 'x-request-id': 'r-7' });
  });

  it('works in @EventPattern handlers: undefined without headers, the headers with them', async () => {
    const before = running.probe.events.length;
    await lastValueFrom(plain.emit('metadata.cast', {}));
    await lastValueFrom(plain.emit('metadata.cast', new ErpsRecordBuilder({}).setHeaders({ trace: 't-1' }).build()));
    await waitFor(() => running.probe.events.length === before + 2);
    expect(running.probe.events.slice(before)).toEqual(['none', { trace: 't-1' }]);
  });
});

describe('caller-context forwarding (Erps forward_callers / Multiverses)', () => {
  const clientStorage = new AsyncLocalStorage<Universe>();

  async function callFromUniverses(client: ErpsClient): Promise<string[]> {
    return Promise.all(['A', 'B', 'C'].map((universe) => clientStorage.run({ universe }, () => firstValueFrom(client.send<string>('universe', {})))));
  }

  it('each concurrent universe sees only its own value; without a value, the listen() context', async () => {
    const running = await serverStorage.run({ universe: 'daemon' }, () => startFeaturesServer({ forwardContext: { storage: serverStorage } }));
    const client = await clientFor(running, { forwardContext: { storage: clientStorage } });
    try {
      await expect(callFromUniverses(client)).resolves.toEqual(['A', 'B', 'C']);
      await expect(firstValueFrom(client.send('universe', {}))).resolves.toBe('daemon');
    } finally {
      await client.close();
      await running.close();
    }
  });

  it('uses encode/decode when given', async () => {
    const running = await startFeaturesServer({ forwardContext: { storage: serverStorage, decode: (value) => ({ universe: `decoded-${String(value)}` }) } });
    const client = await clientFor(running, { forwardContext: { storage: clientStorage, encode: (store: Universe) => store.universe } });
    try {
      await expect(callFromUniverses(client)).resolves.toEqual(['decoded-A', 'decoded-B', 'decoded-C']);
    } finally {
      await client.close();
      await running.close();
    }
  });

  it('a forwarded value that decode refuses fails that call with ERPS_CODEC; the handler does not run', async () => {
    const running = await startFeaturesServer({
      forwardContext: {
        storage: serverStorage,
        decode: (value) => {
          if (value === 'evil') throw new Error('not a universe');
          return { universe: String(value) };
        },
      },
    });
    const client = await clientFor(running, { forwardContext: { storage: clientStorage, encode: (store: Universe) => store.universe } });
    try {
      await expect(clientStorage.run({ universe: 'evil' }, () => firstValueFrom(client.send('universe', {})))).rejects.toMatchObject({
        code: 'ERPS_CODEC',
        message: expect.stringContaining('not a universe'),
      });
      await expect(clientStorage.run({ universe: 'A' }, () => firstValueFrom(client.send('universe', {})))).resolves.toBe('A');
    } finally {
      await client.close();
      await running.close();
    }
  });

  it('with forwarding off, universes do not leak into the server', async () => {
    const running = await startFeaturesServer();
    const client = await clientFor(running);
    try {
      await expect(callFromUniverses(client)).resolves.toEqual(['none', 'none', 'none']);
    } finally {
      await client.close();
      await running.close();
    }
  });
});

describe.each(['tls', 'local'] as const)('isRemote guards over %s', (transport) => {
  let running: RunningServer;
  let client: ErpsClient;

  beforeAll(async () => {
    running = await startFeaturesServer({ transport });
    client = await clientFor(running);
  });

  afterAll(async () => {
    await client.close();
    await running.close();
  });

  it('@RemoteOnly / @LocalOnly let the right callers through and refuse the others before the handler', async () => {
    const allowed = transport === 'tls' ? 'remote.only' : 'local.only';
    const refused = transport === 'tls' ? 'local.only' : 'remote.only';
    await expect(firstValueFrom(client.send(allowed, {}))).resolves.toBe(transport === 'tls' ? 'remote ok' : 'local ok');
    await expect(firstValueFrom(client.send(refused, {}))).rejects.toMatchObject({ code: 'ERPS_FORBIDDEN', message: expect.stringContaining(refused) });
    expect(running.probe.calls).toEqual([allowed]);
  });
});
