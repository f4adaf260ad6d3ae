// Interop with the OpenTelemetry JS SDK: traces, metrics and logs over gRPC, HTTP/protobuf and
// HTTP/JSON, each with and without gzip, into one collector whose file exporter shows exactly what
// arrived. Runs are told apart by the resource attribute test.run.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPLogExporter as LogsGrpc } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as LogsJson } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as LogsProto } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter as MetricsGrpc } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as MetricsJson } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as MetricsProto } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as TracesGrpc } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as TracesJson } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as TracesProto } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

import { startCollector } from './lib/collector.mjs';

const SPANS_PER_RUN = 25; // parent + child + 23 plain spans
const PLAIN_SPANS = SPANS_PER_RUN - 2;
const LOGS_IN_SPAN = 10;
const LOGS_PER_RUN = LOGS_IN_SPAN + 2; // plus one string body and one map body outside any span
const POINTS_PER_RUN = 5; // counter x2 attribute sets, up-down counter, gauge, histogram

const TRANSPORTS = ['grpc', 'http/protobuf', 'http/json'];
const COMPRESSIONS = ['none', 'gzip'];

// Wraps an SDK exporter so that the test sees every export result (the SDK's processors only log
// failures), and so that exports after `closed` are answered without sending: a cumulative metric
// reader exports everything again on shutdown, which would double the points the test counts.
function recording(inner) {
  const rec = { results: [], closed: false };
  rec.exporter = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'export') {
        return (items, cb) => {
          if (rec.closed) return cb({ code: 0 });
          target.export(items, (res) => {
            rec.results.push(res);
            cb(res);
          });
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return rec;
}

function exporters(transport, compression, c) {
  const common = { compression, timeoutMillis: 10000 };
  if (transport === 'grpc') {
    const url = `http://${c.grpcEndpoint}`;
    return {
      traces: new TracesGrpc({ ...common, url }),
      metrics: new MetricsGrpc({ ...common, url }),
      logs: new LogsGrpc({ ...common, url }),
    };
  }
  const [T, M, L] =
    transport === 'http/protobuf' ? [TracesProto, MetricsProto, LogsProto] : [TracesJson, MetricsJson, LogsJson];
  return {
    traces: new T({ ...common, url: `${c.httpUrl}/v1/traces` }),
    metrics: new M({ ...common, url: `${c.httpUrl}/v1/metrics` }),
    logs: new L({ ...common, url: `${c.httpUrl}/v1/logs` }),
  };
}

// Sends one run's telemetry and returns what the SDK recorded (ids) and every export result.
async function sendRun(run, transport, compression, c) {
  const resource = resourceFromAttributes({ 'service.name': 'otelc-sdk-js', 'test.run': run });
  const ex = exporters(transport, compression, c);
  const tr = recording(ex.traces);
  const mr = recording(ex.metrics);
  const lr = recording(ex.logs);

  const tp = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(tr.exporter)] });
  const lp = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: lr.exporter })] });
  const reader = new PeriodicExportingMetricReader({ exporter: mr.exporter, exportIntervalMillis: 3600000 });
  const mp = new MeterProvider({ resource, readers: [reader] });

  const tracer = tp.getTracer('otelc-sdk-js-test', '1.2.3');
  const logger = lp.getLogger('otelc-sdk-js-test', '1.2.3');
  const meter = mp.getMeter('otelc-sdk-js-test', '1.2.3');
  const ids = {};

  tracer.startActiveSpan(
    `${run}/parent`,
    { kind: SpanKind.SERVER, attributes: { 'http.route': '/orders/:id', 'http.status_code': 200 } },
    (parent) => {
      ids.parent = parent.spanContext();
      // Started inside the active parent, so the SDK makes it its child.
      const child = tracer.startSpan(`${run}/child`, { kind: SpanKind.CLIENT });
      child.addEvent('retry', { 'retry.attempt': 2 });
      child.setStatus({ code: SpanStatusCode.ERROR, message: 'child failed' });
      ids.child = child.spanContext();
      child.end();
      for (let i = 0; i < LOGS_IN_SPAN; i++) {
        logger.emit({
          severityNumber: SeverityNumber.WARN,
          severityText: 'WARN',
          body: `${run} log ${i}`,
          attributes: { 'log.index': i, 'log.ok': i % 2 === 0 },
        });
      }
      parent.end();
    },
  );
  logger.emit({ severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: `${run} outside` });
  logger.emit({
    severityNumber: SeverityNumber.ERROR,
    severityText: 'ERROR',
    body: { event: 'structured', count: 3, nested: { ok: true } },
  });
  for (let i = 0; i < PLAIN_SPANS; i++) {
    const s = tracer.startSpan(`${run}/span-${i}`, {
      attributes: {
        'attr.string': `value-${i}`,
        'attr.int': i,
        'attr.double': i + 0.25,
        'attr.bool': i % 2 === 0,
        'attr.strings': ['a', `b${i}`],
        'attr.ints': [i, i * 2],
      },
    });
    s.addEvent('first', { 'event.index': i });
    s.addEvent('second');
    s.end();
  }

  const counter = meter.createCounter('test.requests', { description: 'requests served', unit: '{request}' });
  counter.add(1, { route: '/a' });
  counter.add(2, { route: '/a' });
  counter.add(4, { route: '/b' });
  const updown = meter.createUpDownCounter('test.queue.depth');
  updown.add(5);
  updown.add(-2);
  const gauge = meter.createGauge('test.temperature', { unit: 'Cel' });
  gauge.record(21.5, { room: 'lab' });
  const hist = meter.createHistogram('test.latency', {
    unit: 'ms',
    advice: { explicitBucketBoundaries: [1, 10, 100] },
  });
  for (const v of [0.5, 5, 7, 50, 500]) hist.record(v);

  await tp.forceFlush();
  await lp.forceFlush();
  await mp.forceFlush();
  mr.closed = true;
  await Promise.all([tp.shutdown(), lp.shutdown(), mp.shutdown()]);
  return { ids, results: { traces: tr.results, metrics: mr.results, logs: lr.results } };
}

function runName(transport, compression) {
  return `${transport.replace('/', '-')}-${compression}`;
}

describe('OpenTelemetry JS SDK → collector', { timeout: 240000 }, () => {
  let c;
  const sent = new Map();

  before(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    c = await startCollector();
  });

  after(async () => {
    context.disable();
    if (c) await c.cleanup();
  });

  for (const transport of TRANSPORTS) {
    for (const compression of COMPRESSIONS) {
      const run = runName(transport, compression);
      test(`${transport}, compression ${compression}`, async () => {
        const { ids, results } = await sendRun(run, transport, compression, c);
        sent.set(run, ids);
        for (const [sig, list] of Object.entries(results)) {
          assert.ok(list.length > 0, `${sig}: the SDK exported nothing`);
          for (const r of list) assert.equal(r.code, 0, `${sig} export failed: ${r.error?.message ?? r.error}`);
        }
        const mine = (x) => x.resource['test.run'] === run;

        // Traces.
        const spans = await c.waitFor(() => c.spans(mine), SPANS_PER_RUN, { what: `${run} spans` });
        assert.equal(spans.length, SPANS_PER_RUN);
        const byName = new Map(spans.map((s) => [s.name, s]));
        const expectedNames = [`${run}/parent`, `${run}/child`];
        for (let i = 0; i < PLAIN_SPANS; i++) expectedNames.push(`${run}/span-${i}`);
        assert.deepEqual([...byName.keys()].sort(), expectedNames.sort());
        const parent = byName.get(`${run}/parent`);
        const child = byName.get(`${run}/child`);
        assert.equal(parent.resource['service.name'], 'otelc-sdk-js');
        assert.equal(parent.scope.name, 'otelc-sdk-js-test');
        assert.equal(parent.scope.version, '1.2.3');
        assert.equal(parent.traceId.toLowerCase(), ids.parent.traceId);
        assert.equal(parent.spanId.toLowerCase(), ids.parent.spanId);
        assert.ok(!parent.parentSpanId, `parent has no parent, got ${parent.parentSpanId}`);
        assert.equal(parent.kind, 2); // SERVER
        assert.deepEqual(parent.attrs, { 'http.route': '/orders/:id', 'http.status_code': 200 });
        assert.equal(child.traceId.toLowerCase(), ids.parent.traceId);
        assert.equal(child.spanId.toLowerCase(), ids.child.spanId);
        assert.equal(child.parentSpanId.toLowerCase(), ids.parent.spanId);
        assert.equal(child.kind, 3); // CLIENT
        assert.equal(child.status?.code, 2); // ERROR
        assert.equal(child.status?.message, 'child failed');
        assert.equal(child.events.length, 1);
        assert.equal(child.events[0].name, 'retry');
        assert.equal(Number(child.events[0].attributes[0].value.intValue), 2);
        assert.ok(BigInt(child.endTimeUnixNano) >= BigInt(child.startTimeUnixNano));
        for (let i = 0; i < PLAIN_SPANS; i++) {
          const s = byName.get(`${run}/span-${i}`);
          assert.deepEqual(s.attrs, {
            'attr.string': `value-${i}`,
            'attr.int': i,
            'attr.double': i + 0.25,
            'attr.bool': i % 2 === 0,
            'attr.strings': ['a', `b${i}`],
            'attr.ints': [i, i * 2],
          });
          assert.equal(s.kind, 1); // INTERNAL
          assert.ok(!s.parentSpanId);
          assert.deepEqual(
            s.events.map((e) => e.name),
            ['first', 'second'],
          );
          assert.equal(Number(s.events[0].attributes[0].value.intValue), i);
          assert.match(s.traceId, /^[0-9a-f]{32}$/i);
          assert.match(s.spanId, /^[0-9a-f]{16}$/i);
        }

        // Metrics.
        const points = await c.waitFor(() => c.points(mine), POINTS_PER_RUN, { what: `${run} data points` });
        assert.equal(points.length, POINTS_PER_RUN);
        const requests = points.filter((p) => p.name === 'test.requests');
        assert.equal(requests.length, 2);
        for (const p of requests) {
          assert.equal(p.kind, 'sum');
          assert.equal(p.metric.sum.isMonotonic, true);
          assert.equal(p.metric.sum.aggregationTemporality, 2); // CUMULATIVE
          assert.equal(p.metric.unit, '{request}');
          assert.equal(p.metric.description, 'requests served');
        }
        const byRoute = Object.fromEntries(requests.map((p) => [p.attrs.route, Number(p.point.asInt ?? p.point.asDouble)]));
        assert.deepEqual(byRoute, { '/a': 3, '/b': 4 });
        const [queue] = points.filter((p) => p.name === 'test.queue.depth');
        assert.equal(queue.kind, 'sum');
        assert.ok(!queue.metric.sum.isMonotonic);
        assert.equal(Number(queue.point.asInt ?? queue.point.asDouble), 3);
        const [temp] = points.filter((p) => p.name === 'test.temperature');
        assert.equal(temp.kind, 'gauge');
        assert.equal(Number(temp.point.asDouble), 21.5);
        assert.deepEqual(temp.attrs, { room: 'lab' });
        const [lat] = points.filter((p) => p.name === 'test.latency');
        assert.equal(lat.kind, 'histogram');
        assert.equal(lat.metric.unit, 'ms');
        assert.equal(Number(lat.point.count), 5);
        assert.equal(Number(lat.point.sum), 562.5);
        assert.deepEqual(lat.point.explicitBounds.map(Number), [1, 10, 100]);
        assert.deepEqual(lat.point.bucketCounts.map(Number), [1, 2, 1, 1]);
        assert.equal(Number(lat.point.min), 0.5);
        assert.equal(Number(lat.point.max), 500);
        assert.equal(points[0].resource['service.name'], 'otelc-sdk-js');

        // Logs.
        const logs = await c.waitFor(() => c.logs(mine), LOGS_PER_RUN, { what: `${run} log records` });
        assert.equal(logs.length, LOGS_PER_RUN);
        const inSpan = logs.filter((l) => typeof l.bodyValue === 'string' && / log \d+$/.test(l.bodyValue));
        assert.equal(inSpan.length, LOGS_IN_SPAN);
        assert.deepEqual(
          inSpan.map((l) => l.bodyValue).sort(),
          Array.from({ length: LOGS_IN_SPAN }, (_, i) => `${run} log ${i}`).sort(),
        );
        for (const l of inSpan) {
          const i = Number(l.bodyValue.split(' ').pop());
          assert.equal(l.traceId.toLowerCase(), ids.parent.traceId);
          assert.equal(l.spanId.toLowerCase(), ids.parent.spanId);
          assert.equal(l.severityNumber, SeverityNumber.WARN);
          assert.equal(l.severityText, 'WARN');
          assert.deepEqual(l.attrs, { 'log.index': i, 'log.ok': i % 2 === 0 });
          assert.equal(l.resource['service.name'], 'otelc-sdk-js');
          assert.equal(l.scope.name, 'otelc-sdk-js-test');
        }
        const outside = logs.find((l) => l.bodyValue === `${run} outside`);
        assert.ok(outside, 'the log record outside any span arrived');
        assert.ok(!outside.traceId, `no trace id outside a span, got ${outside.traceId}`);
        assert.equal(outside.severityNumber, SeverityNumber.INFO);
        const structured = logs.find((l) => typeof l.bodyValue === 'object');
        assert.deepEqual(structured.bodyValue, { event: 'structured', count: 3, nested: { ok: true } });
        assert.equal(structured.severityNumber, SeverityNumber.ERROR);
      });
    }
  }

  test('every run arrived once and nothing else did', async () => {
    assert.equal(sent.size, TRANSPORTS.length * COMPRESSIONS.length);
    const total = SPANS_PER_RUN * sent.size;
    const spans = await c.waitFor(() => c.spans(), total, { what: 'spans' });
    assert.equal(spans.length, total);
    assert.equal(new Set(spans.map((s) => s.spanId)).size, total, 'span ids are unique');
    assert.equal(c.points().length, POINTS_PER_RUN * sent.size);
    assert.equal(c.logs().length, LOGS_PER_RUN * sent.size);
    const { code, signal } = await c.stop();
    assert.equal(signal, null);
    assert.equal(code, 0, c.stderrTail());
  });
});
