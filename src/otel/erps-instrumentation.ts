import diagnostics_channel from 'node:diagnostics_channel';
import { Attributes, context, Context, Counter, Histogram, propagation, ROOT_CONTEXT, Span, SpanKind, SpanStatusCode, trace, UpDownCounter } from '@opentelemetry/api';
import { InstrumentationBase, InstrumentationConfig } from '@opentelemetry/instrumentation';
import { ERPS_CHANNELS, ErpsClientCallMessage, ErpsConnectionMessage, ErpsServerCallMessage } from '../observability/channels.js';
import { errorType, RPC_SYSTEM } from './attributes.js';

export interface ErpsInstrumentationConfig extends InstrumentationConfig {
  /** Client spans only for calls made inside an active span (no new root traces from background work). Default false. */
  requireParentSpan?: boolean;
}

const VERSION = '0.1.0';

interface Instruments {
  clientDuration: Histogram;
  serverDuration: Histogram;
  clientInFlight: UpDownCounter;
  serverInFlight: UpDownCounter;
  connections: UpDownCounter;
  reconnects: Counter;
  slowConsumerDrops: Counter;
}

interface Running {
  span: Span;
  startedAt: number;
  attributes: Attributes;
}

type TracingHandlers<M extends object> = Parameters<diagnostics_channel.TracingChannel<M, M>['subscribe']>[0];

/**
 * OpenTelemetry for nestjs-erps, built on its diagnostics channels (nothing is patched): a CLIENT span per call and
 * cast, a SERVER span per handler run with the caller's W3C trace context (the handler runs inside the server span),
 * call duration histograms and connection metrics. `registerInstrumentations({ instrumentations: [new ErpsInstrumentation()] })`.
 */
export class ErpsInstrumentation extends InstrumentationBase<ErpsInstrumentationConfig> {
  // State lives in a WeakMap, not in fields: InstrumentationBase calls enable() from its constructor.
  constructor(config: ErpsInstrumentationConfig = {}) {
    super('nestjs-erps', VERSION, config);
  }

  protected init(): [] {
    return [];
  }

  override enable(): void {
    const state = stateOf(this);
    if (state.unsubscribe !== undefined) return;
    const unsubscribes = [
      subscribeTracing(ERPS_CHANNELS.clientCall, this.clientHandlers()),
      subscribeTracing(ERPS_CHANNELS.clientCast, this.clientHandlers()),
      subscribeTracing(ERPS_CHANNELS.serverCall, this.serverHandlers()),
      subscribeTracing(ERPS_CHANNELS.serverCast, this.serverHandlers()),
      subscribe(ERPS_CHANNELS.clientConnect, (m) => this.connected(m)),
      subscribe(ERPS_CHANNELS.serverConnect, (m) => this.connected(m)),
      subscribe(ERPS_CHANNELS.clientDisconnect, (m) => this.disconnected(m)),
      subscribe(ERPS_CHANNELS.serverDisconnect, (m) => this.disconnected(m)),
      subscribe(ERPS_CHANNELS.clientReconnecting, (m) => this.instruments().reconnects.add(1, endpointAttributes(m))),
      subscribe(ERPS_CHANNELS.slowConsumer, (m) => this.instruments().slowConsumerDrops.add(1, { 'erps.side': m.side })),
    ];
    state.unsubscribe = () => unsubscribes.forEach((unsubscribe) => unsubscribe());
  }

  override disable(): void {
    const state = stateOf(this);
    state.unsubscribe?.();
    state.unsubscribe = undefined;
  }

  protected override _updateMetricInstruments(): void {
    stateOf(this).instruments = undefined;
  }

  private instruments(): Instruments {
    const state = stateOf(this);
    if (state.instruments !== undefined) return state.instruments;
    const meter = this.meter;
    const bytes = state.bytes;
    const sent = meter.createObservableCounter('erps.connection.bytes.sent', { unit: 'By', description: 'Bytes written to Erps connections' });
    const received = meter.createObservableCounter('erps.connection.bytes.received', { unit: 'By', description: 'Bytes read from Erps connections' });
    meter.addBatchObservableCallback(
      (result) => {
        const totals = { client: { ...bytes.closed.client }, server: { ...bytes.closed.server } };
        for (const [read, side] of bytes.live) {
          const now = read();
          totals[side].sent += now.sent;
          totals[side].received += now.received;
        }
        for (const side of ['client', 'server'] as const) {
          result.observe(sent, totals[side].sent, { 'erps.side': side });
          result.observe(received, totals[side].received, { 'erps.side': side });
        }
      },
      [sent, received],
    );
    state.instruments = {
      clientDuration: meter.createHistogram('rpc.client.call.duration', { unit: 's', description: 'Duration of outgoing Erps calls and casts' }),
      serverDuration: meter.createHistogram('rpc.server.call.duration', { unit: 's', description: 'Duration of Erps handler runs' }),
      clientInFlight: meter.createUpDownCounter('erps.client.calls.in_flight', { description: 'Calls awaiting their last reply' }),
      serverInFlight: meter.createUpDownCounter('erps.server.calls.in_flight', { description: 'Handler runs not finished' }),
      connections: meter.createUpDownCounter('erps.connections', { description: 'Open Erps connections (handshake done)' }),
      reconnects: meter.createCounter('erps.client.reconnects', { description: 'Reconnect attempts scheduled' }),
      slowConsumerDrops: meter.createCounter('erps.slow_consumer.drops', { description: 'Connections closed because the peer did not read' }),
    };
    return state.instruments;
  }

  private clientHandlers(): TracingHandlers<ErpsClientCallMessage> {
    return {
      end: noop,
      asyncStart: noop,
      start: (message) => {
        const parent = context.active();
        if (this.getConfig().requireParentSpan === true && trace.getSpan(parent) === undefined) return;
        const attributes: Attributes = { 'rpc.system': RPC_SYSTEM, 'rpc.system.name': RPC_SYSTEM, 'rpc.method': message.pattern };
        const span = this.tracer.startSpan(message.pattern, { kind: SpanKind.CLIENT, attributes }, parent);
        propagation.inject(trace.setSpan(parent, span), message.headers);
        running.set(message, { span, startedAt: performance.now(), attributes });
        this.instruments().clientInFlight.add(1);
      },
      error: (message) => failed(running.get(message), message.error),
      asyncEnd: (message) => {
        const run = running.get(message);
        if (run === undefined) return;
        running.delete(message);
        if (message.endpoint !== undefined) {
          run.attributes['server.address'] = message.endpoint.host;
          run.attributes['server.port'] = message.endpoint.port;
          run.span.setAttributes({ 'server.address': message.endpoint.host, 'server.port': message.endpoint.port });
        }
        if (message.cancelled === true) run.span.setAttribute('erps.cancelled', true);
        const instruments = this.instruments();
        instruments.clientInFlight.add(-1);
        instruments.clientDuration.record(finish(run), run.attributes);
      },
    };
  }

  private serverHandlers(): TracingHandlers<ErpsServerCallMessage> {
    return {
      end: noop,
      asyncStart: noop,
      start: (message) => {
        const parent: Context = propagation.extract(ROOT_CONTEXT, message.headers);
        const attributes: Attributes = { 'rpc.system': RPC_SYSTEM, 'rpc.system.name': RPC_SYSTEM, 'rpc.method': message.pattern };
        const spanAttributes: Attributes = { ...attributes };
        if (message.remoteAddress !== undefined) spanAttributes['network.peer.address'] = message.remoteAddress;
        if (message.remotePort !== undefined) spanAttributes['network.peer.port'] = message.remotePort;
        if (message.peer?.cn !== undefined) spanAttributes['erps.peer.cn'] = message.peer.cn;
        const span = this.tracer.startSpan(message.pattern, { kind: SpanKind.SERVER, attributes: spanAttributes }, parent);
        const inSpan = trace.setSpan(parent, span);
        message.runInContext = (fn) => context.with(inSpan, fn);
        running.set(message, { span, startedAt: performance.now(), attributes });
        this.instruments().serverInFlight.add(1);
      },
      error: (message) => failed(running.get(message), message.error),
      asyncEnd: (message) => {
        const run = running.get(message);
        if (run === undefined) return;
        running.delete(message);
        if (message.cancelled === true) run.span.setAttribute('erps.cancelled', true);
        const instruments = this.instruments();
        instruments.serverInFlight.add(-1);
        instruments.serverDuration.record(finish(run), run.attributes);
      },
    };
  }

  private connected(message: ErpsConnectionMessage): void {
    this.instruments().connections.add(1, { 'erps.side': message.side });
    const bytes = stateOf(this).bytes;
    if (message.bytes !== undefined && message.connectionId !== undefined) {
      bytes.live.set(message.bytes, message.side);
      bytes.byConnection.set(`${message.side}:${message.connectionId}`, message.bytes);
    }
  }

  private disconnected(message: ErpsConnectionMessage): void {
    const bytes = stateOf(this).bytes;
    const key = `${message.side}:${message.connectionId}`;
    const read = bytes.byConnection.get(key);
    if (read === undefined) return; // never counted as open (refused during the handshake, or before enable())
    bytes.byConnection.delete(key);
    bytes.live.delete(read);
    const last = read();
    bytes.closed[message.side].sent += last.sent;
    bytes.closed[message.side].received += last.received;
    this.instruments().connections.add(-1, { 'erps.side': message.side });
  }
}

interface State {
  unsubscribe: (() => void) | undefined;
  instruments: Instruments | undefined;
  bytes: {
    live: Map<() => { sent: number; received: number }, 'client' | 'server'>;
    byConnection: Map<string, () => { sent: number; received: number }>;
    closed: Record<'client' | 'server', { sent: number; received: number }>;
  };
}

/** State kept outside the instance: InstrumentationBase calls enable() before a subclass's fields exist. */
const states = new WeakMap<ErpsInstrumentation, State>();
const running = new WeakMap<object, Running>();

function stateOf(instrumentation: ErpsInstrumentation): State {
  let state = states.get(instrumentation);
  if (state === undefined) {
    state = {
      unsubscribe: undefined,
      instruments: undefined,
      bytes: { live: new Map(), byConnection: new Map(), closed: { client: { sent: 0, received: 0 }, server: { sent: 0, received: 0 } } },
    };
    states.set(instrumentation, state);
  }
  return state;
}

function subscribeTracing<M extends object>(name: string, handlers: TracingHandlers<M>): () => void {
  const channel = diagnostics_channel.tracingChannel<M, M>(name);
  channel.subscribe(handlers);
  return () => channel.unsubscribe(handlers);
}

function subscribe(name: string, handler: (message: ErpsConnectionMessage) => void): () => void {
  const listener = (message: unknown): void => handler(message as ErpsConnectionMessage);
  diagnostics_channel.subscribe(name, listener);
  return () => diagnostics_channel.unsubscribe(name, listener);
}

function failed(run: Running | undefined, err: unknown): void {
  if (run === undefined) return;
  const type = errorType(err);
  run.attributes['error.type'] = type;
  run.span.setAttribute('error.type', type);
  if (err instanceof Error) run.span.recordException(err);
  run.span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : (err as { message?: string } | null)?.message });
}

/** Ends the span; returns the duration in seconds. */
function finish(run: Running): number {
  run.span.end();
  return (performance.now() - run.startedAt) / 1000;
}

function endpointAttributes(message: ErpsConnectionMessage): Attributes {
  return message.host === undefined ? {} : { 'server.address': message.host, 'server.port': message.port };
}

function noop(): void {}
