/**
 * Rows where the attacker is slow on purpose: a client that never reads, partial frames hoarded in the
 * daemon's memory, and a TLS handshake stretched record by record. All against the main daemon.
 */
import { MIB, sleep } from './attack-common.js';
import { AttackEnv, codeCounts, RowContext, RowSpec } from './attack-harness.js';
import { DelayProxy } from './attack-proxy.js';
import { closedWithin, openPeers, option, short, trickle, waitForDisconnects } from './attack-rows-util.js';
import { callFrame, FrameType, frameHeader, RawPeer } from './attack-wire.js';

const EMPTY = Buffer.alloc(0);

/**
 * A client with a valid certificate that completes the handshake, then never reads while `begin` makes the
 * daemon send to it. Held when the daemon closes it within keepaliveMs × (maxMissedPings + 1) + 0.5 s, its RSS
 * growing by at most 4 × maxWriteBufferBytes (the close threshold) twice over (under TLS the plaintext waiting to
 * be written and its ciphertext are both in memory) plus 30 MiB.
 */
function neverReadingRow(env: AttackEnv, label: string, begin: (peer: RawPeer, ctx: RowContext, capMs: number) => () => void): RowSpec {
  const daemon = env.main;
  const writeBuffer = option(daemon, 'maxWriteBufferBytes', 8 * MIB);
  return {
    attack: `never-reading client: ${label}`,
    daemon,
    expected: 'ERPS_SLOW_CONSUMER or PINGs unanswered, within keepaliveMs × (maxMissedPings + 1) + 0.5 s',
    maxRssGrowthMiB: (2 * 4 * writeBuffer) / MIB + 30,
    run: async (ctx) => {
      const { keepaliveMs, maxMissedPings } = daemon.config;
      const deadlineMs = keepaliveMs * (maxMissedPings + 1) + 500;
      const capMs = deadlineMs + 2500;
      const peer = await RawPeer.open(daemon.port, env.slow.pem);
      await peer.handshake();
      peer.stopReading();
      const startedAt = Date.now();
      const stopAttack = begin(peer, ctx, capMs);
      await waitForDisconnects(ctx, [peer.localPort], capMs);
      stopAttack();
      const gaveUpAt = Date.now();
      peer.destroy();
      const report = await ctx.end();
      const closed = report?.events.find((e) => e.kind === 'disconnect' && e.port === peer.localPort && e.at < gaveUpAt);
      const after = closed === undefined ? undefined : closed.at - startedAt;
      const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
      let how = closed === undefined ? `still open after ${seconds(capMs)}` : `${closed.code} after ${seconds(after!)} (${short(closed.message)})`;
      if (report !== undefined && report.broadcasts.calls > 0) how += `; broadcasts reached it ${report.broadcasts.delivered} of ${report.broadcasts.calls} times`;
      return { attempts: 1, stopped: after !== undefined && after <= deadlineMs ? 1 : 0, how };
    },
  };
}

function neverReadingRows(env: AttackEnv): RowSpec[] {
  return [
    neverReadingRow(env, 'a handler streams 4 × 64 KiB values a ms to it', (peer) => {
      peer.write(callFrame(1, 'stream', EMPTY));
      return () => undefined;
    }),
    neverReadingRow(env, 'server.broadcast of 4 × 64 KiB a ms', (_peer, ctx, capMs) => {
      void ctx.daemon.request({ cmd: 'broadcast', cn: 'slow', bytes: 64 * 1024, everyMs: 1, forMs: capMs });
      return () => undefined;
    }),
    neverReadingRow(env, 'asks for twenty 1 MiB replies', (peer) => {
      for (let id = 1; id <= 20; id++) peer.write(callFrame(id, 'big', EMPTY));
      return () => undefined;
    }),
    neverReadingRow(env, 'a 1 MiB call every 200 ms, never reads', (peer) => {
      let id = 1;
      const timer = setInterval(() => peer.write(callFrame(id++, 'big', EMPTY)), 200);
      return () => clearInterval(timer);
    }),
  ];
}

function hoardingRows(env: AttackEnv): RowSpec[] {
  const daemon = env.main;
  const partialBudget = option(daemon, 'maxPartialFrameBytes', 64 * MIB);
  return [
    {
      attack: 'partial frames: 8 × 64 MiB HELLO announced, then trickled',
      daemon,
      expected: 'ERPS_FRAME_TOO_LARGE at the header (pre-handshake frames ~1 KiB), within 1 s',
      run: async (ctx) => {
        const capMs = option(daemon, 'handshakeTimeoutMs', 10_000) + 2000;
        const peers = await openPeers(env, 8);
        const startedAt = Date.now();
        peers.forEach((p) => p.write(frameHeader(FrameType.HELLO, 0, 0, 64 * MIB)));
        const stop = trickle(peers);
        const outcome = await closedWithin(ctx, peers, 8, startedAt, 1000, capMs);
        stop();
        return outcome;
      },
    },
    {
      attack: 'partial frames: 16 × (maxFrameBytes − 16) after HELLO, 3.75 MiB sent, rest trickled',
      daemon,
      expected: 'ERPS_OVERLOADED (maxPartialFrameBytes) / frameTimeoutMs, within frameTimeoutMs + 1 s',
      maxRssGrowthMiB: partialBudget / MIB + 30,
      run: async (ctx) => {
        const frameTimeoutMs = option(daemon, 'frameTimeoutMs', 30_000);
        const peers = await openPeers(env, 16);
        const welcomes = await Promise.all(peers.map((p) => p.handshake()));
        const announced = Math.min(...welcomes.map((w) => w.maxFrameBytes)) - 16;
        const bulk = Buffer.alloc(Math.min(announced - 4096, 3.75 * MIB));
        const startedAt = Date.now();
        peers.forEach((p) => p.write(frameHeader(FrameType.CALL, 0, 1, announced)));
        await Promise.all(peers.map((p) => p.writeLarge(bulk)));
        const stop = trickle(peers);
        const outcome = await closedWithin(ctx, peers, 16, startedAt, frameTimeoutMs + 1000, frameTimeoutMs + 3000);
        stop();
        return { ...outcome, how: `announced ${(announced / MIB).toFixed(2)} MiB each: ${outcome.how}` };
      },
    },
  ];
}

/**
 * Each TLS record of the client held back so that the TLS handshake alone fits in handshakeTimeoutMs but TLS +
 * HELLO does not: held when the daemon drops it within handshakeTimeoutMs (+0.5 s) of the TCP accept.
 */
function delayedTlsRow(env: AttackEnv): RowSpec {
  const daemon = env.main;
  return {
    attack: 'delayed TLS records (slow handshake through a proxy)',
    daemon,
    expected: 'closed within handshakeTimeoutMs of TCP accept (one deadline to WELCOME)',
    run: async (ctx) => {
      const handshakeMs = option(daemon, 'handshakeTimeoutMs', 10_000);
      const proxy = await DelayProxy.start(daemon.port);
      try {
        // Calibration: how many records a client sends up to and including HELLO.
        const probe = await RawPeer.open(proxy.port, env.bob.pem);
        await probe.handshake();
        probe.destroy();
        const records = proxy.connections[0]!.clientRecords;
        proxy.delayMs = Math.floor(handshakeMs / (records - 0.5));
        const attempts = 4;
        const welcomed = await Promise.all(
          Array.from({ length: attempts }, async () => {
            try {
              const peer = await RawPeer.open(proxy.port, env.bob.pem, {}, 3 * handshakeMs);
              const got = await peer.handshake(0, 2 * handshakeMs).then(
                () => true,
                () => false,
              );
              peer.destroy();
              return got;
            } catch {
              return false;
            }
          }),
        );
        const attacked = proxy.connections.slice(1);
        const limit = handshakeMs + 500;
        const inTime = attacked.filter((c) => c.closedBy === 'daemon' && c.upstreamClosedAt - c.upstreamOpenedAt <= limit).length;
        const welcomes = welcomed.filter(Boolean).length;
        const lived = attacked.map((c) => ((c.upstreamClosedAt || Date.now()) - c.upstreamOpenedAt) / 1000);
        await sleep(300); // the daemon's view of the last closes
        const events = await ctx.events();
        const how =
          `${records} records, ${proxy.delayMs} ms each; ${welcomes} got WELCOME; ` + `lived ${Math.min(...lived).toFixed(1)}–${Math.max(...lived).toFixed(1)} s; ${codeCounts(events)}`;
        return { attempts, stopped: Math.min(inTime, attempts - welcomes), how };
      } finally {
        await proxy.close();
      }
    },
  };
}

export function slowRows(env: AttackEnv): RowSpec[] {
  return [...neverReadingRows(env), ...hoardingRows(env), delayedTlsRow(env)];
}
