import { AsyncLocalStorage } from 'node:async_hooks';
import { connectable, finalize, isObservable, Observable, Subject } from 'rxjs';
import { describeError, errorReply } from '../errors/index.js';
import type { ForwardContextOptions } from '../forward-context.js';
import type { SplitMeta } from '../protocol/headers.js';
import type { ErpsAuthorizeRequest } from './erps-server-options.js';
import type { CallReply } from './call-reply.js';
import { ErpsServerCallMessage, serverCallChannel, serverCastChannel } from '../observability/channels.js';
import type { InboundMessage } from './session.js';
import type { ErpsSessionInfo } from './session-info.js';

/** A handler as the framework gives it: called with the payload and a context; returns a value, Promise or Observable. */
export type Handler = ((data: unknown, ctx: unknown) => unknown) & {
  isEventHandler?: boolean;
  /** False when the handler never reads its context (a direct handler without `@Ctx()`): none is built for it. */
  usesContext?: boolean;
};

/** Start and end hooks around a handler run (Nest's processing hooks, installed by instrumentation). */
export interface ProcessingHooks {
  start(ctx: unknown, run: () => Promise<void>): unknown;
  end(ctx: unknown): void;
}

/** What the framework adapter provides to the pipeline. */
export interface DispatchHost {
  /** The handler's context object (`@Ctx()`), built once per message. */
  contextFor(message: InboundMessage): unknown;
  /** The processing hooks, when something installed them (checked per message: they can be set after listen). */
  processingHooks(): ProcessingHooks | undefined;
  /** A call's stream failed with `err` (after the framework's exception filters). */
  streamFailed(pattern: string, err: unknown): void;
}

export interface DispatchOptions {
  authorize?: (request: ErpsAuthorizeRequest) => boolean | Promise<boolean>;
  forwardContext?: ForwardContextOptions<unknown>;
  logger: { error(message: unknown): void };
}

/**
 * The pipeline a message goes through once a session has decoded it: authorize → caller context → processing hooks
 * → handler → reply. One object, so that instrumentation can wrap `call` and `cast`. It knows handlers only as
 * functions; the Nest adapter supplies them, the context object and the hooks.
 */
export class Dispatcher {
  /** Runs a function in the async context that was active at listen() (forwardContext only). */
  private listenContext: (<R>(fn: () => R) => R) | undefined;

  constructor(
    private readonly options: DispatchOptions,
    private readonly host: DispatchHost,
  ) {}

  /** Called at listen(): handlers without a forwarded context run in the context active now. */
  captureListenContext(): void {
    if (this.options.forwardContext !== undefined) this.listenContext = AsyncLocalStorage.snapshot();
  }

  call(handler: Handler, message: InboundMessage, reply: CallReply): void {
    if (serverCallChannel.hasSubscribers) return this.tracedCall(handler, message, reply);
    this.dispatchCall(handler, message, reply);
  }

  cast(handler: Handler, message: InboundMessage, dropped: (reason: string) => void): void {
    if (serverCastChannel.hasSubscribers) return this.tracedCast(handler, message, dropped);
    this.dispatchCast(handler, message, dropped);
  }

  /** A call while `erps:server:call` has subscribers: its run is published, and may run inside their context. */
  private tracedCall(handler: Handler, message: InboundMessage, reply: CallReply): void {
    const traced = tracedMessage('call', message);
    serverCallChannel.start.publish(traced);
    reply.onDone(() => {
      if (reply.cancelled) traced.cancelled = true;
      if (reply.failure !== undefined) {
        traced.error = reply.failure;
        serverCallChannel.error.publish(traced);
      } else {
        traced.result = reply.value;
      }
      serverCallChannel.asyncEnd.publish(traced);
    });
    try {
      const run = (): void => this.dispatchCall(handler, message, reply);
      if (traced.runInContext !== undefined) traced.runInContext(run);
      else run();
    } finally {
      serverCallChannel.end.publish(traced);
    }
  }

  private tracedCast(handler: Handler, message: InboundMessage, dropped: (reason: string) => void): void {
    const traced = tracedMessage('cast', message);
    serverCastChannel.start.publish(traced);
    let ended = false;
    const end = (err?: unknown): void => {
      if (ended) return;
      ended = true;
      if (err !== undefined) {
        traced.error = err;
        serverCastChannel.error.publish(traced);
      }
      serverCastChannel.asyncEnd.publish(traced);
    };
    try {
      const run = (): void =>
        this.dispatchCast(
          handler,
          message,
          (reason) => {
            end(new Error(reason));
            dropped(reason);
          },
          end,
        );
      if (traced.runInContext !== undefined) traced.runInContext(run);
      else run();
    } finally {
      serverCastChannel.end.publish(traced);
    }
  }

  private dispatchCall(handler: Handler, message: InboundMessage, reply: CallReply): void {
    // Same outcome as below when neither option is configured, without the closures per call.
    if (this.options.authorize === undefined && this.options.forwardContext === undefined) return this.runCall(handler, message, reply);
    this.whenAuthorized(message, 'call', (allowed) => {
      if (!allowed) return reply.error(errorReply('ERPS_FORBIDDEN', `peer ${describePeer(message.session.info)} may not call "${message.pattern}"`));
      this.inCallerContext(
        message.meta,
        () => this.runCall(handler, message, reply),
        (reason) => reply.error(errorReply('ERPS_CODEC', reason)),
      );
    });
  }

  /** `ended` hears when the handler is done (with its error, if it failed): tracing only. */
  private dispatchCast(handler: Handler, message: InboundMessage, dropped: (reason: string) => void, ended?: (err?: unknown) => void): void {
    if (this.options.authorize === undefined && this.options.forwardContext === undefined) return this.runEvent(handler, message, ended);
    this.whenAuthorized(message, 'cast', (allowed) => {
      if (!allowed) return dropped(`peer ${describePeer(message.session.info)} may not cast it`);
      this.inCallerContext(message.meta, () => this.runEvent(handler, message, ended), dropped);
    });
  }

  /** Runs `then` with the `authorize` verdict (at once when there is no hook or it answers synchronously). */
  private whenAuthorized(message: InboundMessage, kind: 'call' | 'cast', then: (allowed: boolean) => void): void {
    const authorize = this.options.authorize;
    if (authorize === undefined) return then(true);
    let verdict: boolean | Promise<boolean>;
    try {
      verdict = authorize({ peer: message.session.info.peer, pattern: message.pattern, kind, connectionId: message.session.id });
    } catch (err) {
      this.options.logger.error(`authorize() threw, denying: ${describeError(err)}`);
      return then(false);
    }
    if (typeof verdict === 'boolean') return then(verdict);
    Promise.resolve(verdict).then(
      (allowed) => then(allowed === true),
      (err: unknown) => {
        this.options.logger.error(`authorize() rejected, denying: ${describeError(err)}`);
        then(false);
      },
    );
  }

  /**
   * Runs `fn` in the forwarded caller context, or in the context active at listen() (forwardContext only).
   * A forwarded value that `decode` refuses means the handler does not run: `refuse` gets the reason.
   */
  private inCallerContext(meta: SplitMeta, fn: () => unknown, refuse: (reason: string) => void): void {
    const forward = this.options.forwardContext;
    if (forward === undefined) {
      fn();
    } else if (meta.hasContext) {
      let store: unknown;
      try {
        store = forward.decode ? forward.decode(meta.context) : meta.context;
      } catch (err) {
        return refuse(`forwardContext.decode refused the caller context: ${describeError(err)}`);
      }
      forward.storage.run(store, fn);
    } else if (this.listenContext !== undefined) {
      this.listenContext(fn);
    } else {
      fn();
    }
  }

  private runCall(handler: Handler, message: InboundMessage, reply: CallReply): void {
    const hooks = this.host.processingHooks();
    const ctx = hooks === undefined && handler.usesContext === false ? undefined : this.host.contextFor(message);
    if (hooks === undefined) {
      // The common case: the framework's handler already returns a Promise, so one `then` is all the plumbing needed.
      let result: unknown;
      try {
        result = handler(message.data, ctx);
      } catch (err) {
        return this.handlerFailed(err, reply);
      }
      if (isPromiseLike(result)) {
        result.then(
          (value) => this.deliver(value, reply, message.pattern),
          (err: unknown) => this.handlerFailed(err, reply),
        );
      } else {
        this.deliver(result, reply, message.pattern);
      }
      return;
    }
    this.withHooks(hooks, ctx, async (end) => {
      const result = await handler(message.data, ctx);
      if (isObservable(result)) {
        this.follow(result, reply, message.pattern);
        // The end hook runs when the reply is done: completed, failed or cancelled.
        reply.onDone(end);
      } else {
        reply.single(result);
        end();
      }
    }).catch((err: unknown) => this.handlerFailed(err, reply));
  }

  /** A handler's result: a stream is followed, anything else is the single reply. Never throws. */
  private deliver(value: unknown, reply: CallReply, pattern: string): void {
    try {
      if (isObservable(value)) this.follow(value, reply, pattern);
      else reply.single(value);
    } catch (err) {
      this.handlerFailed(err, reply);
    }
  }

  private follow(stream$: Observable<unknown>, reply: CallReply, pattern: string): void {
    reply.follow(stream$, (err) => this.host.streamFailed(pattern, err));
  }

  /** The framework turns handler errors into error values; what still escapes it is a bug worth a log line. */
  private handlerFailed(err: unknown, reply: CallReply): void {
    this.options.logger.error(err);
    reply.error(errorReply());
  }

  /** Runs the head handler of a pattern (which runs the chain of event handlers for it). */
  private runEvent(handler: Handler, message: InboundMessage, ended?: (err?: unknown) => void): void {
    const hooks = this.host.processingHooks();
    if (hooks === undefined && handler.usesContext !== undefined) return this.runDirectEvent(handler, message, ended);
    const ctx = this.host.contextFor(message);
    this.withHooks(hooks, ctx, async (end) => {
      const result = await handler(message.data, ctx);
      if (isObservable(result)) {
        const done = ended === undefined ? end : () => (end(), ended());
        connectable(result.pipe(finalize(done)), { connector: () => new Subject(), resetOnDisconnect: false }).connect();
      } else {
        end();
        ended?.();
      }
    }).catch((err: unknown) => {
      ended?.(err);
      this.options.logger.error(err);
    });
  }

  /**
   * A direct event handler with no hooks: called at once, and a synchronous one costs no Promise. Its errors were
   * already handed to Nest's exceptions handler (which logs them), so what comes back is only followed to its end.
   */
  private runDirectEvent(handler: Handler, message: InboundMessage, ended?: (err?: unknown) => void): void {
    let result: unknown;
    try {
      result = handler(message.data, handler.usesContext === false ? undefined : this.host.contextFor(message));
    } catch (err) {
      ended?.(err);
      this.options.logger.error(err);
      return;
    }
    if (isPromiseLike(result)) {
      result.then(
        (value) => this.followEvent(value, ended),
        (err: unknown) => {
          ended?.(err);
          this.options.logger.error(err);
        },
      );
    } else {
      this.followEvent(result, ended);
    }
  }

  private followEvent(result: unknown, ended?: (err?: unknown) => void): void {
    if (!isObservable(result)) return ended?.();
    const done = ended === undefined ? noop : () => ended();
    connectable(result.pipe(finalize(done)), { connector: () => new Subject(), resetOnDisconnect: false }).connect();
  }

  /** Runs `fn` between the processing start and end hooks, or directly when there are none. */
  private withHooks(hooks: ProcessingHooks | undefined, ctx: unknown, fn: (end: () => void) => Promise<void>): Promise<void> {
    if (hooks === undefined) return fn(noop);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      hooks.end(ctx);
    };
    return Promise.resolve(hooks.start(ctx, () => fn(end))).then(noop, (err: unknown) => {
      end();
      throw err;
    });
  }
}

function tracedMessage(kind: 'call' | 'cast', message: InboundMessage): ErpsServerCallMessage {
  const info = message.session.info;
  return {
    kind,
    pattern: message.pattern,
    headers: message.meta.headers,
    data: message.data,
    peer: info.peer,
    remoteAddress: info.remoteAddress,
    remotePort: info.remotePort,
    connectionId: message.session.id,
  };
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return value instanceof Promise || (typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function');
}

function noop(): void {}

function describePeer(info: ErpsSessionInfo): string {
  return info.peer?.cn !== undefined ? `"${info.peer.cn}"` : info.remote ? '(no certificate)' : '(local)';
}
