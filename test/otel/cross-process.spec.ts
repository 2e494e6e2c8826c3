import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { lastValueFrom } from 'rxjs';
import { ErpsClient } from 'nestjs-erps';
import { ErpsInstrumentation } from 'nestjs-erps/otel';
import { calcClient } from '../support/apps';
import { testCertificates } from '../support/certs';

interface RemoteSpan {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
}

/** Issue 14's "done when": client → server → handler spans in one trace, for a call across two processes. */
describe('OpenTelemetry across two processes (the daemon in a child process with its own SDK)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let instrumentation: ErpsInstrumentation;
  let child: ChildProcess;
  let client: ErpsClient;

  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    instrumentation = new ErpsInstrumentation();
    instrumentation.setTracerProvider(provider);
    const certs = await testCertificates();
    child = fork(join(__dirname, 'fixtures', 'traced-daemon.js'), [certs.dir], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`traced daemon exited early (${code})`)));
      child.once('message', (message: { port: number }) => resolve(message.port));
    });
    client = await calcClient(port);
  });

  afterAll(async () => {
    await client.close();
    child.kill();
    instrumentation.disable();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it('the handler span (child process) is a child of the server span, itself a child of the client span (this process)', async () => {
    const outer = trace.getTracer('test').startSpan('request');
    const doubled = await context.with(trace.setSpan(context.active(), outer), () => lastValueFrom(client.send<number>('traced', 21)));
    outer.end();
    expect(doubled).toBe(42);
    const remote = await new Promise<RemoteSpan[]>((resolve) => {
      child.once('message', (message: { spans: RemoteSpan[] }) => resolve(message.spans));
      child.send('spans');
    });
    const clientSpan = exporter.getFinishedSpans().find((span) => span.name === 'traced' && span.kind === SpanKind.CLIENT)!;
    const serverSpan = remote.find((span) => span.name === 'traced' && span.kind === SpanKind.SERVER)!;
    const handlerSpan = remote.find((span) => span.name === 'handler work')!;
    const traceId = outer.spanContext().traceId;
    expect(clientSpan.spanContext().traceId).toBe(traceId);
    expect(clientSpan.parentSpanContext?.spanId).toBe(outer.spanContext().spanId);
    expect(serverSpan).toMatchObject({ traceId, parentSpanId: clientSpan.spanContext().spanId });
    expect(handlerSpan).toMatchObject({ traceId, parentSpanId: serverSpan.spanId });
  });
});
