import diagnostics_channel from 'node:diagnostics_channel';
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { DataPointType, HistogramMetricData, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { interval, lastValueFrom, map, take, toArray } from 'rxjs';
import { ErpsClient, ErpsContext } from 'nestjs-erps';
import { ERPS_CHANNELS, ErpsConnectionMessage, ErpsInstrumentation } from 'nestjs-erps/otel';
import { calcClient, RunningServer, startCalcServer } from '../support/apps';
import { waitFor } from '../support/wait';

const handlerTracer = trace.getTracer('handler');

@Controller()
class TracedController {
  @MessagePattern('traced')
  traced(@Payload() value: number, @Ctx() ctx: ErpsContext): { value: number; headers: Record<string, string> } {
    handlerTracer.startSpan('inside the handler').end();
    return { value, headers: { ...ctx.getHeaders() } };
  }

  @MessagePattern('boom')
  boom(): never {
    throw new RpcException({ code: 'E_BOOM', message: 'boom' });
  }

  @MessagePattern('stream')
  stream(): ReturnType<typeof interval> {
    return interval(1).pipe(
      take(3),
      map((i) => i),
    );
  }

  @EventPattern('audit')
  audit(@Payload() _entry: unknown): void {
    handlerTracer.startSpan('inside the event handler').end();
  }
}

class TestReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

describe('ErpsInstrumentation with the OpenTelemetry SDK (real daemon, mutual TLS)', () => {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const contextManager = new AsyncLocalStorageContextManager();
  let instrumentation: ErpsInstrumentation;
  let server: RunningServer;
  let client: ErpsClient;

  beforeAll(async () => {
    context.setGlobalContextManager(contextManager.enable());
    trace.setGlobalTracerProvider(tracerProvider);
    propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
    instrumentation = new ErpsInstrumentation();
    instrumentation.setTracerProvider(tracerProvider);
    instrumentation.setMeterProvider(meterProvider);
    server = await startCalcServer({}, { controllers: [TracedController] });
    client = await calcClient(server.port);
    await client.connect();
  });

  afterAll(async () => {
    await client.close();
    await server.close();
    instrumentation.disable();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  beforeEach(() => exporter.reset());

  const spansNamed = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((span) => span.name === name);
  const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;

  it('a call inside an active span: client → server → handler spans in one trace, W3C headers visible to the handler', async () => {
    const outer = handlerTracer.startSpan('outer');
    const reply = await context.with(trace.setSpan(context.active(), outer), () => lastValueFrom(client.send<{ value: number; headers: Record<string, string> }>('traced', 7)));
    outer.end();
    await waitFor(() => spansNamed('traced').length === 2);
    const clientSpan = spansNamed('traced').find((span) => span.kind === SpanKind.CLIENT)!;
    const serverSpan = spansNamed('traced').find((span) => span.kind === SpanKind.SERVER)!;
    const inner = spansNamed('inside the handler')[0]!;
    const traceId = outer.spanContext().traceId;
    expect([clientSpan, serverSpan, inner].map((span) => span.spanContext().traceId)).toEqual([traceId, traceId, traceId]);
    expect(parentOf(clientSpan)).toBe(outer.spanContext().spanId);
    expect(parentOf(serverSpan)).toBe(clientSpan.spanContext().spanId);
    expect(parentOf(inner)).toBe(serverSpan.spanContext().spanId);
    expect(reply.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-${clientSpan.spanContext().spanId}-01$`));
    expect(clientSpan.attributes).toMatchObject({ 'rpc.system': 'erps', 'rpc.method': 'traced', 'server.address': '127.0.0.1', 'server.port': server.port });
    expect(serverSpan.attributes).toMatchObject({ 'rpc.system': 'erps', 'rpc.method': 'traced', 'network.peer.address': '127.0.0.1', 'erps.peer.cn': 'alice' });
    expect(clientSpan.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('errors set the span status and error.type on both sides', async () => {
    await expect(lastValueFrom(client.send('boom', null))).rejects.toMatchObject({ code: 'E_BOOM' });
    await waitFor(() => spansNamed('boom').length === 2);
    for (const span of spansNamed('boom')) {
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
      expect(span.attributes['error.type']).toBe('E_BOOM');
    }
  });

  it('a streamed call is one span on each side, ended at the stream end', async () => {
    await expect(lastValueFrom(client.send<number>('stream', null).pipe(toArray()))).resolves.toEqual([0, 1, 2]);
    await waitFor(() => spansNamed('stream').length === 2);
    expect(
      spansNamed('stream')
        .map((span) => span.kind)
        .sort(),
    ).toEqual([SpanKind.SERVER, SpanKind.CLIENT].sort());
  });

  it('a cast is a client span and a server span; the event handler runs inside it', async () => {
    await lastValueFrom(client.emit('audit', { who: 'alice' }));
    await waitFor(() => spansNamed('audit').length === 2 && spansNamed('inside the event handler').length === 1);
    const serverSpan = spansNamed('audit').find((span) => span.kind === SpanKind.SERVER)!;
    expect(parentOf(spansNamed('inside the event handler')[0]!)).toBe(serverSpan.spanContext().spanId);
  });

  it('the duration histograms count every call', async () => {
    const before = await histogramCount('rpc.client.call.duration', 'traced');
    await Promise.all(Array.from({ length: 5 }, (_, i) => lastValueFrom(client.send('traced', i))));
    await waitFor(() => spansNamed('traced').length === 10);
    expect(await histogramCount('rpc.client.call.duration', 'traced')).toBe(before + 5);
    expect(await histogramCount('rpc.server.call.duration', 'traced')).toBe(before + 5);
  });

  it('channel subscribers see the connection lifecycle; disabled, the instrumentation records nothing', async () => {
    const seen: string[] = [];
    const names = [ERPS_CHANNELS.clientConnect, ERPS_CHANNELS.serverConnect, ERPS_CHANNELS.clientDisconnect, ERPS_CHANNELS.serverDisconnect];
    const listeners = names.map((name) => {
      const listener = (message: unknown): void => {
        seen.push(`${name} ${(message as ErpsConnectionMessage).side}`);
      };
      diagnostics_channel.subscribe(name, listener);
      return () => diagnostics_channel.unsubscribe(name, listener);
    });
    const second = await calcClient(server.port);
    await second.connect();
    await waitFor(() => seen.length === 2);
    instrumentation.disable();
    exporter.reset();
    await lastValueFrom(second.send('traced', 1));
    await second.close();
    await waitFor(() => seen.length === 4);
    listeners.forEach((unsubscribe) => unsubscribe());
    instrumentation.enable();
    expect(seen.sort()).toEqual(
      [`${ERPS_CHANNELS.clientConnect} client`, `${ERPS_CHANNELS.clientDisconnect} client`, `${ERPS_CHANNELS.serverConnect} server`, `${ERPS_CHANNELS.serverDisconnect} server`].sort(),
    );
    // The handler's own span is there, but no Erps span, and so no parent for it.
    expect(spansNamed('traced')).toEqual([]);
    expect(spansNamed('inside the handler').map(parentOf)).toEqual([undefined]);
  });

  async function histogramCount(name: string, method: string): Promise<number> {
    const { resourceMetrics } = await reader.collect();
    const metric = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((m) => m.descriptor.name === name);
    if (metric === undefined) return 0;
    expect(metric.dataPointType).toBe(DataPointType.HISTOGRAM);
    return (metric as HistogramMetricData).dataPoints.filter((point) => point.attributes['rpc.method'] === method).reduce((sum, point) => sum + point.value.count, 0);
  }
});
