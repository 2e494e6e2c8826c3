/**
 * The rows `npm run attack` had before issue 10: bad bytes, bad certificates, floods, deep nesting,
 * forbidden patterns. All against the main daemon.
 */
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { deflateRaw } from 'node:zlib';
import { firstValueFrom } from 'rxjs';
import { ErpsClient } from 'nestjs-erps';
import { CLIENT_VERSION, describe, IDENTIFIER, MIB } from './attack-common.js';
import { AttackEnv, AttackOutcome, codeCounts, Party, RowContext, RowSpec } from './attack-harness.js';
import { callBody, frame, FrameType, frameHeader, helloFrame, tcpSendAndWaitClose, tlsSendAndWaitClose } from './attack-wire.js';

/** Runs `attempts` attempts at once; each resolves true when the daemon stopped it. */
async function countStopped(attempts: number, one: (i: number) => Promise<boolean>): Promise<number> {
  const results = await Promise.all(Array.from({ length: attempts }, (_, i) => one(i)));
  return results.filter(Boolean).length;
}

/** A row where the daemon must close every connection; "how" is what its disconnect events said. */
async function closedRow(ctx: RowContext, attempts: number, one: () => Promise<boolean>): Promise<AttackOutcome> {
  const stopped = await countStopped(attempts, one);
  return { attempts, stopped, how: codeCounts(await ctx.events()) };
}

export function attackerClient(env: AttackEnv, party: Party, port = env.main.port): ErpsClient {
  return new ErpsClient({ host: '127.0.0.1', port, identifier: IDENTIFIER, version: CLIENT_VERSION, tls: party.files, reconnect: false, connectTimeoutMs: 3000 });
}

/** Resolves the error code of a refused connect, or undefined if it got in. */
async function refusedWith(client: ErpsClient): Promise<string | undefined> {
  try {
    await client.connect();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? describe(err);
  } finally {
    await client.close();
  }
}

/** The error code a call ends with, or undefined if it succeeded. */
function errorCodeOf(client: ErpsClient, pattern: string, data: unknown): Promise<string | undefined> {
  return firstValueFrom(client.send(pattern, data)).then(
    () => undefined,
    (err: { code?: string }) => err.code ?? 'error',
  );
}

function tally(codes: Array<string | undefined>, admitted = 'admitted'): string {
  const counts = new Map<string, number>();
  for (const code of codes) counts.set(code ?? admitted, (counts.get(code ?? admitted) ?? 0) + 1);
  return [...counts].map(([code, n]) => `${code} ×${n}`).join(', ');
}

export function classicRows(env: AttackEnv): RowSpec[] {
  const daemon = env.main;
  const port = (): number => daemon.port;
  const handshakeMs = (): number => Number(daemon.config.options.handshakeTimeoutMs ?? 10_000);
  let bomb: Buffer | undefined;

  const refusedCertificate = (attack: string, party: Party, expected: string): RowSpec => ({
    attack,
    daemon,
    expected,
    run: async (ctx) => {
      const codes = await Promise.all(Array.from({ length: 20 }, () => refusedWith(attackerClient(env, party))));
      await ctx.events();
      return { attempts: 20, stopped: codes.filter((c) => c !== undefined).length, how: `client saw ${tally(codes)}` };
    },
  });

  return [
    {
      attack: 'garbage bytes (good certificate)',
      daemon,
      expected: 'closed: unknown frame type / malformed HELLO',
      run: (ctx) => closedRow(ctx, 50, () => tlsSendAndWaitClose(port(), env.bob.pem, [randomBytes(2048)], 3000)),
    },
    {
      attack: 'oversize frame (1 GiB announced)',
      daemon,
      expected: 'closed before allocating: ERPS_FRAME_TOO_LARGE',
      run: (ctx) => closedRow(ctx, 20, () => tlsSendAndWaitClose(port(), env.bob.pem, [helloFrame(), frameHeader(FrameType.CALL, 0, 1, 1024 * MIB)], 3000)),
    },
    {
      attack: 'decompression bomb (128 MiB inflated)',
      daemon,
      expected: 'closed: inflated size exceeds maxFrameBytes',
      run: async (ctx) => {
        // Compressed off the event loop: the good client lives in this process.
        bomb ??= frame(FrameType.CALL, 0x80, 1, await promisify(deflateRaw)(callBody('probe', Buffer.alloc(128 * MIB))));
        return closedRow(ctx, 5, () => tlsSendAndWaitClose(port(), env.bob.pem, [helloFrame(0x01), bomb!], 5000));
      },
    },
    {
      attack: 'slow-loris (TCP, no TLS)',
      daemon,
      expected: 'closed by handshakeTimeoutMs',
      run: (ctx) => closedRow(ctx, 30, () => tcpSendAndWaitClose(port(), undefined, handshakeMs() + 1500)),
    },
    {
      attack: 'plain TCP speaking Erps on the TLS port',
      daemon,
      expected: 'TLS handshake failure',
      run: (ctx) => closedRow(ctx, 20, () => tcpSendAndWaitClose(port(), helloFrame(), 3000)),
    },
    refusedCertificate('client certificate from an untrusted CA', env.untrusted, 'TLS: certificate rejected'),
    {
      attack: 'no client certificate',
      daemon,
      expected: 'TLS: certificate required',
      run: (ctx) => closedRow(ctx, 20, () => tlsSendAndWaitClose(port(), { ca: env.ca }, [helloFrame()], 3000)),
    },
    refusedCertificate('revoked client certificate (CRL)', env.revoked, 'TLS: certificate revoked'),
    {
      attack: 'connection flood past maxConnections',
      daemon,
      expected: 'REJECT: server full (up to maxConnections may pass)',
      run: async (ctx) => {
        const maxConnections = Number(daemon.config.options.maxConnections);
        const before = (await daemon.sample())?.connections ?? 0;
        const clients = Array.from({ length: 60 }, () => attackerClient(env, env.carol));
        const codes = await Promise.all(
          clients.map((c) =>
            c.connect().then(
              () => undefined,
              (err: { code?: string }) => err.code ?? 'error',
            ),
          ),
        );
        await Promise.all(clients.map((c) => c.close()));
        await ctx.events();
        const rejected = codes.filter((c) => c === 'ERPS_HANDSHAKE').length;
        const admitted = codes.filter((c) => c === undefined).length;
        const allowance = maxConnections - before;
        return { attempts: 60, stopped: rejected + Math.min(admitted, allowance), how: `${tally(codes)} (room for ${allowance})` };
      },
    },
    {
      attack: 'in-flight flood past maxInFlightPerConnection',
      daemon,
      expected: 'ERPS_BUSY error reply, connection kept',
      run: async (ctx) => {
        const maxInFlight = Number(daemon.config.options.maxInFlightPerConnection);
        const busy = attackerClient(env, env.carol);
        await busy.connect();
        const codes = await Promise.all(Array.from({ length: 200 }, () => errorCodeOf(busy, 'slow', 200)));
        await busy.close();
        await ctx.events();
        const refused = codes.filter((c) => c === 'ERPS_BUSY').length;
        const ran = codes.filter((c) => c === undefined).length;
        return { attempts: 200, stopped: refused + Math.min(ran, maxInFlight), how: tally(codes, 'ran') };
      },
    },
    replyRow(env, 'payload nested past maxDepth', 'ERPS_CODEC error reply', 'ERPS_CODEC', 20, 'probe', nested(200)),
    replyRow(env, 'forbidden pattern (authorize)', 'ERPS_FORBIDDEN, handler never ran', 'ERPS_FORBIDDEN', 100, 'admin.secret', {}),
  ];
}

function nested(levels: number): unknown {
  let deep: unknown = 0;
  for (let i = 0; i < levels; i++) deep = [deep];
  return deep;
}

/** `attempts` calls from one attacker client; stopped = answered with the error `code`. */
function replyRow(env: AttackEnv, attack: string, expected: string, code: string, attempts: number, pattern: string, data: unknown): RowSpec {
  return {
    attack,
    daemon: env.main,
    expected,
    run: async (ctx) => {
      const client = attackerClient(env, env.carol);
      await client.connect();
      const codes = await Promise.all(Array.from({ length: attempts }, () => errorCodeOf(client, pattern, data)));
      await client.close();
      await ctx.events();
      return { attempts, stopped: codes.filter((c) => c === code).length, how: tally(codes, 'handler ran') };
    },
  };
}
