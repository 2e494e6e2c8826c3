/**
 * Payloads that are small on the wire and large (or endless) once decoded: msgpack arrays of empty maps,
 * structured-clone references (cycles, "billion laughs") and msgpackr record definitions.
 */
import { pack, Packr } from 'msgpackr';
import { MIB } from './attack-common.js';
import type { Daemon } from './attack-daemon-handle.js';
import { AttackEnv, codeCounts, RowSpec } from './attack-harness.js';
import { forPorts } from './attack-rows-util.js';
import { callFrame, errorCode, FrameType, frameHeader, messagePrefix, ParsedFrame, RawPeer } from './attack-wire.js';

/** How long a row waits for the answer to a hostile payload: a defended daemon answers in well under a second. */
const ANSWER_WAIT_MS = 5000;

/** msgpack array32 header (0xdd, u32 count) then `count` empty maps (0x80): `count` values in count + 5 bytes. */
function emptyMaps(bytes: number): Buffer {
  const payload = Buffer.alloc(bytes, 0x80);
  payload[0] = 0xdd;
  payload.writeUInt32BE(bytes - 5, 1);
  return payload;
}

/** What came back for a call: the error code, "handler ran", or what the daemon did instead. */
function answerOf(frame: ParsedFrame | undefined, peer: RawPeer): string {
  if (frame?.type === FrameType.ERROR) return errorCode(frame);
  if (frame?.type === FrameType.REPLY) return 'handler ran';
  return peer.closed ? 'closed' : 'no answer';
}

function tally(answers: string[]): string {
  const counts = new Map<string, number>();
  for (const a of answers) counts.set(a, (counts.get(a) ?? 0) + 1);
  return [...counts].map(([a, n]) => `${a} ×${n}`).join(', ');
}

/**
 * One CALL of `probe` whose body is exactly `frameBytes` long, the payload an array of empty maps. Held = an
 * error reply or a close by the daemon, without the decoded array ever being built.
 */
function amplificationRow(env: AttackEnv, daemon: Daemon, frameBytes: number, expected: string): RowSpec {
  let payload: Buffer | undefined;
  return {
    attack: `msgpack amplification: ${frameBytes / MIB} MiB of empty maps (${daemon.config.name} daemon)`,
    daemon,
    expected,
    // Receiving the frame costs the frame, plus the TLS read chunks it was copied from until the next GC.
    maxRssGrowthMiB: Math.max(100, (2 * frameBytes) / MIB + 30),
    run: async (ctx) => {
      const prefix = messagePrefix('probe');
      payload ??= emptyMaps(frameBytes - prefix.length);
      const peer = await RawPeer.open(daemon.port, env.bob.pem);
      await peer.handshake();
      peer.write(frameHeader(FrameType.CALL, 0, 1, frameBytes));
      peer.write(prefix);
      await peer.writeLarge(payload);
      const answer = await peer.waitFrame((f) => f.id === 1 && (f.type === FrameType.REPLY || f.type === FrameType.ERROR), ANSWER_WAIT_MS);
      let kept = false;
      if (!peer.closed) {
        peer.write(callFrame(2, 'sum', pack([1, 2])));
        kept = (await peer.waitFrame((f) => f.id === 2, 3000))?.type === FrameType.REPLY;
      }
      peer.destroy();
      const events = forPorts(await ctx.events(), [peer]);
      const what = answerOf(answer, peer);
      let how = `maxFrameBytes ${daemon.config.maxFrameBytes / MIB} MiB: `;
      if (answer?.type === FrameType.ERROR) how += `${what} reply, connection ${kept ? 'kept' : 'not usable'}`;
      else if (!daemon.alive) how += 'the daemon died before answering';
      else how += `${what} after ${((Date.now() - peer.openedAt) / 1000).toFixed(1)} s; ${codeCounts(events)}`;
      // A close counts when the daemon refused the frame, not when the connection merely died (ERPS_CONNECTION_LOST:
      // e.g. the daemon, busy decoding, declared this peer silent).
      const refusedByClose = answer === undefined && events.some((e) => e.code !== 'clean' && e.code !== 'ERPS_CONNECTION_LOST');
      const stopped = answer?.type === FrameType.ERROR || refusedByClose;
      return { attempts: 1, stopped: stopped ? 1 : 0, how };
    },
  };
}

/** `attempts` CALLs of `probe` with `payload` on one connection; held = every one answered ERPS_CODEC. */
function codecRow(env: AttackEnv, attack: string, payload: Buffer, attempts: number): RowSpec {
  return {
    attack: `${attack} (${payload.length} bytes)`,
    daemon: env.main,
    expected: 'ERPS_CODEC error reply, handler never ran',
    run: async (ctx) => {
      const peer = await RawPeer.open(env.main.port, env.bob.pem);
      await peer.handshake();
      for (let id = 1; id <= attempts; id++) peer.write(callFrame(id, 'probe', payload));
      const answers: string[] = [];
      for (let id = 1; id <= attempts; id++) {
        answers.push(answerOf(await peer.waitFrame((f) => f.id === id && (f.type === FrameType.REPLY || f.type === FrameType.ERROR), ANSWER_WAIT_MS), peer));
      }
      peer.destroy();
      await ctx.events();
      return { attempts, stopped: answers.filter((a) => a === 'ERPS_CODEC').length, how: tally(answers) };
    },
  };
}

function cyclicArray(): Buffer {
  const a: unknown[] = [];
  a.push(a);
  return new Packr({ structuredClone: true }).pack(a);
}

/** 28 levels, each an array holding the level below twice: 2^28 leaves once expanded. */
function billionLaughs(): Buffer {
  let x: unknown = ['lol'];
  for (let i = 0; i < 28; i++) x = [x, x];
  return new Packr({ structuredClone: true }).pack(x);
}

function records(): Buffer {
  return new Packr({ useRecords: true }).pack([
    { a: 1, b: 2 },
    { a: 3, b: 4 },
  ]);
}

export function codecRows(env: AttackEnv, wide: Daemon): RowSpec[] {
  const atHeader = 'closed at the frame header (ERPS_FRAME_TOO_LARGE)';
  const byElements = 'ERPS_CODEC reply (maxElements), connection kept';
  // The amplification rows last: against an undefended daemon they are the slow ones (it decodes, then dies).
  return [
    codecRow(env, 'cyclic array (structured-clone ext 0x69/0x70)', cyclicArray(), 10),
    codecRow(env, 'billion laughs: 28 levels of shared references', billionLaughs(), 1),
    codecRow(env, 'msgpackr record definitions (ext 0x72)', records(), 10),
    amplificationRow(env, env.main, 8 * MIB, atHeader),
    amplificationRow(env, env.main, 64 * MIB, atHeader),
    amplificationRow(env, wide, 8 * MIB, byElements),
    amplificationRow(env, wide, 64 * MIB, byElements),
  ];
}
