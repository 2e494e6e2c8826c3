// One daemon of a test fleet, in its own process: plain JavaScript on the built package (dist/), so it runs without
// a TypeScript loader (as test/faults/fixtures/server-process.js). Started by fleet.ts: fork(this, [JSON config]).
//
// Config (argv[2], JSON): { id, host, port, certDir, delayMs, keepaliveMs, drainTimeoutMs, journal, server, workers }
//   id        the name 'whoami' reports (tests tell daemons apart by it)
//   delayMs   extra delay before every call's handler runs ('count' excepted); setDelay changes it
//   journal   a file: one line per call or cast, appended synchronously before the handler runs, so it survives
//             SIGKILL ("pattern token" where token is the call's `x-call` header, or '-')
//   server    more ErpsServerOptions (JSON-safe ones: maxInFlightPerConnection, maxConnections, ...)
//   workers   > 0: node:cluster mode. This process is the primary; it forks `workers` workers that each run an
//             ErpsServer on the same host:port, and relays the commands below to them.
//
// IPC, parent → daemon: { id, cmd: 'stats' | 'setDelay' | 'drain' | 'killWorker', ms?, worker? }
//   daemon → parent: { type: 'ready', port, pid, workers? } once listening, { type: 'reply', id, ... } per command.
// The daemon exits when the parent goes away (IPC disconnect); after 'drain' it exits once drained.
'use strict';
require('reflect-metadata');
const cluster = require('node:cluster');
const { appendFileSync } = require('node:fs');
const path = require('node:path');

const config = JSON.parse(process.argv[2] ?? '{}');
const workers = cluster.isPrimary ? (config.workers ?? 0) : 0;

if (workers > 0) runPrimary();
else runDaemon();

// ---- one daemon (a plain process, or a cluster worker) ----------------------------------------------

function runDaemon() {
  const { Controller, Module } = require('@nestjs/common');
  const { NestFactory } = require('@nestjs/core');
  const { Ctx, EventPattern, MessagePattern, Payload } = require('@nestjs/microservices');
  const { ErpsServer } = require(path.resolve(__dirname, '../../../dist/index.js'));

  const workerId = cluster.isWorker ? cluster.worker.id : undefined;
  const state = { delayMs: config.delayMs ?? 0, calls: {}, casts: 0, port: 0 };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** Counts the call and journals it before anything else can happen (a SIGKILL right after still leaves the line). */
  function record(pattern, ctx) {
    state.calls[pattern] = (state.calls[pattern] ?? 0) + 1;
    if (config.journal) {
      const token = ctx?.getHeaders?.()['x-call'] ?? '-';
      appendFileSync(config.journal, `${pattern} ${token}\n`);
    }
  }
  async function delayed() {
    if (state.delayMs > 0) await sleep(state.delayMs);
  }
  const identity = () => ({ id: config.id, host: config.host, port: state.port, pid: process.pid, worker: workerId });

  class FleetController {
    async whoami(_data, ctx) {
      record('whoami', ctx);
      await delayed();
      return identity();
    }
    async sum(xs, ctx) {
      record('sum', ctx);
      await delayed();
      return xs.reduce((a, b) => a + b, 0);
    }
    async slow(ms, ctx) {
      record('slow', ctx);
      await delayed();
      await sleep(ms);
      return { id: config.id, worker: workerId, ms };
    }
    count() {
      return { id: config.id, worker: workerId, calls: { ...state.calls }, casts: state.casts };
    }
    tick(_data, ctx) {
      state.casts++;
      if (config.journal) appendFileSync(config.journal, `tick ${ctx?.getHeaders?.()['x-call'] ?? '-'}\n`);
    }
  }
  // The decorators, applied by hand (plain JavaScript): @MessagePattern / @EventPattern, @Payload() and @Ctx().
  for (const name of ['whoami', 'sum', 'slow', 'count', 'tick']) {
    const decorate = name === 'tick' ? EventPattern(name) : MessagePattern(name);
    decorate(FleetController.prototype, name, Object.getOwnPropertyDescriptor(FleetController.prototype, name));
    Payload()(FleetController.prototype, name, 0);
    Ctx()(FleetController.prototype, name, 1);
  }
  Controller()(FleetController);
  class FleetModule {}
  Module({ controllers: [FleetController] })(FleetModule);

  let app;
  let server;
  let draining;
  const drain = () => {
    draining ??= app.close().then(() => undefined);
    return draining;
  };
  const stats = () => {
    const s = server.stats();
    return {
      id: config.id,
      worker: workerId,
      pid: process.pid,
      calls: { ...state.calls },
      casts: state.casts,
      connections: s.connections,
      inFlight: s.inFlight,
      delayMs: state.delayMs,
    };
  };

  process.on('message', (msg) => {
    if (msg == null || typeof msg !== 'object' || msg.cmd === undefined) return;
    const reply = (body) => process.send?.({ type: 'reply', id: msg.id, ...body });
    switch (msg.cmd) {
      case 'stats':
        return reply({ stats: stats() });
      case 'setDelay':
        state.delayMs = msg.ms;
        return reply({});
      case 'drain':
        return void drain().then(
          () => {
            reply({ stats: stats() });
            setTimeout(() => process.exit(0), 20);
          },
          (err) => reply({ error: String(err) }),
        );
      default:
        return reply({ error: `unknown command ${msg.cmd}` });
    }
  });

  async function main() {
    const tlsDir = config.certDir;
    const tls = { caFile: path.join(tlsDir, 'ca.crt'), certFile: path.join(tlsDir, 'server.crt'), keyFile: path.join(tlsDir, 'server.key') };
    server = new ErpsServer({
      host: config.host ?? '127.0.0.1',
      port: cluster.isWorker ? Number(process.env.ERPS_FLEET_PORT ?? 0) : (config.port ?? 0),
      tls,
      identifier: 'calc',
      versions: '^1.0.0',
      keepaliveMs: config.keepaliveMs ?? 200,
      drainTimeoutMs: config.drainTimeoutMs ?? 5000,
      ...(config.server ?? {}),
    });
    app = await NestFactory.createMicroservice(FleetModule, { strategy: server, logger: false });
    await app.listen();
    state.port = server.address().port;
    process.send?.({ type: 'ready', port: state.port, pid: process.pid, worker: workerId });
    process.on('disconnect', () => process.exit(0)); // the test runner (or the cluster primary) went away
  }
  main().catch((err) => {
    process.send?.({ type: 'failed', error: err instanceof Error ? `${err.code ?? err.name}: ${err.message}` : String(err) });
    setTimeout(() => process.exit(1), 20);
  });
}

// ---- the cluster primary: forks the workers, relays commands ----------------------------------------

function runPrimary() {
  cluster.setupPrimary({ args: [JSON.stringify(config)], silent: false });
  const all = [];
  let nextRequest = 1;
  const waiting = new Map();
  const port = config.port ?? 0;

  /** Asks every live worker; resolves with their replies. */
  function askAll(body) {
    const live = all.filter((w) => !w.isDead());
    return Promise.all(
      live.map(
        (worker) =>
          new Promise((resolve) => {
            const id = nextRequest++;
            waiting.set(id, resolve);
            worker.once('exit', () => waiting.has(id) && (waiting.delete(id), resolve({ error: 'worker exited' })));
            worker.send({ ...body, id });
          }),
      ),
    );
  }

  const fork = () =>
    new Promise((resolve, reject) => {
      // Every worker passes the same port argument: the primary keeps one listening handle per (address, port as
      // asked), so with port 0 all workers share the one port the first listen got. A worker asking for that
      // port by number would make the primary bind it a second time (EADDRINUSE).
      const worker = cluster.fork({ ERPS_FLEET_PORT: String(port) });
      all.push(worker);
      worker.on('message', (msg) => {
        if (msg?.type === 'ready') return resolve(msg);
        if (msg?.type === 'failed') return reject(new Error(msg.error));
        if (msg?.type === 'reply' && waiting.has(msg.id)) {
          const done = waiting.get(msg.id);
          waiting.delete(msg.id);
          done(msg);
        }
      });
      worker.once('exit', (code, signal) => reject(new Error(`worker exited early (${code ?? signal})`)));
    });

  process.on('message', (msg) => {
    if (msg == null || typeof msg !== 'object' || msg.cmd === undefined) return;
    const reply = (body) => process.send?.({ type: 'reply', id: msg.id, ...body });
    switch (msg.cmd) {
      case 'stats':
        return void askAll({ cmd: 'stats' }).then((replies) => reply({ workers: replies.map((r) => r.stats).filter(Boolean) }));
      case 'setDelay':
        return void askAll({ cmd: 'setDelay', ms: msg.ms }).then(() => reply({}));
      case 'drain':
        return void askAll({ cmd: 'drain' }).then((replies) => {
          reply({ workers: replies.map((r) => r.stats).filter(Boolean) });
          setTimeout(() => process.exit(0), 50);
        });
      case 'killWorker': {
        const worker = all.find((w) => w.id === msg.worker);
        if (worker === undefined || worker.isDead()) return reply({ error: `no live worker ${msg.worker}` });
        worker.once('exit', () => reply({}));
        worker.process.kill('SIGKILL');
        return;
      }
      default:
        return reply({ error: `unknown command ${msg.cmd}` });
    }
  });
  process.on('disconnect', () => {
    for (const worker of all) worker.process.kill('SIGKILL');
    process.exit(0);
  });

  (async () => {
    const first = await fork();
    const rest = [];
    for (let i = 1; i < workers; i++) rest.push(await fork());
    process.send?.({ type: 'ready', port: first.port, pid: process.pid, workers: [first, ...rest].map((r) => ({ worker: r.worker, pid: r.pid })) });
  })().catch((err) => {
    process.send?.({ type: 'failed', error: err instanceof Error ? err.message : String(err) });
    for (const worker of all) worker.process.kill('SIGKILL');
    setTimeout(() => process.exit(1), 20);
  });
}
