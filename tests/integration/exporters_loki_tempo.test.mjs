// The loki and OTLP exporters end to end from the OpenTelemetry JS SDK. Loki and Tempo cannot run
// here, so recording sinks (lib/sinks.mjs) play them and decode what arrives with the project's
// proto schemas: the Loki push API (snappy + logproto.PushRequest) and OTLP over gRPC (Tempo's
// ingest) and over HTTP. The SDK sends logs (severities, string and map bodies, attributes,
// emitted inside spans so that they carry trace and span ids) and traces (a parent and a child
// with attributes, an event and a status); the test asserts streams, labels, lines, order,
// timestamps and structured metadata on the Loki side (also in the JSON format and with the
// metadata as logfmt in the line) and the whole trace content on the OTLP side (gRPC and HTTP),
// and that OTLP protobuf is forwarded byte for byte.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

import { httpRequest } from './lib/clients.mjs';
import { flattenSpans, startCollector } from './lib/collector.mjs';
import { spansRequest } from './lib/proto.mjs';
import {
  encodeOtlp,
  exporterPipelineConfig,
  LokiSink,
  OtlpGrpcSink,
  OtlpHttpSink,
  startSink,
  stopAndClean,
} from './lib/sinks.mjs';

const RESOURCE = {
  'service.name': 'orders-api',
  'service.namespace': 'shop',
  'service.instance.id': 'orders-1',
  'deployment.environment': 'e2e',
  'host.name': 'test-host',
};
const TENANT = 'team-a';

// Log timestamps in ns: written out of order on purpose (the exporter must order a stream's
// entries), with sub-millisecond parts so that a lossy conversion shows.
const BASE_S = Math.floor(Date.now() / 1000) - 5;
const hr = (offsetNs) => [BASE_S + Math.floor(offsetNs / 1e9), offsetNs % 1e9];
const ns = (offsetNs) => BigInt(BASE_S) * 1000000000n + BigInt(offsetNs);

// The logs the SDK sends, in emission order. `span` names which span they are emitted in.
const LOGS = [
  { span: 'parent', at: 3000123, sev: SeverityNumber.INFO, text: 'INFO', body: 'order 3 created', attrs: { 'order.id': 3 } },
  { span: 'parent', at: 1000456, sev: SeverityNumber.INFO, text: 'INFO', body: 'order 1 created', attrs: { 'order.id': 1 } },
  { span: 'parent', at: 2000789, sev: SeverityNumber.INFO, text: 'INFO', body: 'order 2 created', attrs: { 'order.id': 2 } },
  { span: 'child', at: 4000001, sev: SeverityNumber.ERROR, text: 'ERROR', body: 'db timeout', attrs: { 'db.system': 'postgresql', retryable: true } },
  {
    span: 'child',
    at: 5000002,
    sev: SeverityNumber.WARN,
    text: 'WARN',
    body: { event: 'slow_query', 'duration.ms': 812.5, tables: ['orders', 'items'], nested: { ok: false } },
    attrs: {},
  },
  { span: null, at: 6000003, sev: SeverityNumber.INFO, text: 'INFO', body: 'outside any span', attrs: {} },
];

async function sendTelemetry(httpUrl) {
  const resource = resourceFromAttributes(RESOURCE);
  const traceResults = [];
  const logResults = [];
  const wrap = (inner, results) => ({
    export: (items, cb) => inner.export(items, (r) => (results.push(r), cb(r))),
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
  });
  const tp = new BasicTracerProvider({
    resource,
    spanProcessors: [new SimpleSpanProcessor(wrap(new OTLPTraceExporter({ url: `${httpUrl}/v1/traces` }), traceResults))],
  });
  // A processor that exported each record at once would make one request per record: collect the
  // SDK's finished records instead and export them in one call at the end.
  const records = [];
  const lp = new LoggerProvider({
    resource,
    processors: [
      new SimpleLogRecordProcessor({
        exporter: {
          export: (items, cb) => (records.push(...items), cb({ code: 0 })),
          shutdown: async () => {},
          forceFlush: async () => {},
        },
      }),
    ],
  });
  const tracer = tp.getTracer('otelc-e2e-tracer', '2.0.0');
  const logger = lp.getLogger('otelc-e2e-logger', '3.0.0');
  const ids = {};
  const parent = tracer.startSpan('GET /orders', {
    kind: SpanKind.SERVER,
    attributes: { 'http.request.method': 'GET', 'http.route': '/orders', 'http.response.status_code': 200 },
  });
  const parentCtx = trace.setSpan(context.active(), parent);
  const child = tracer.startSpan('SELECT orders', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql', 'db.rows': 3 } }, parentCtx);
  child.addEvent('retry', { 'retry.attempt': 2 });
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'timeout' });
  const childCtx = trace.setSpan(context.active(), child);
  ids.parent = parent.spanContext();
  ids.child = child.spanContext();
  for (const l of LOGS) {
    logger.emit({
      timestamp: hr(l.at),
      severityNumber: l.sev,
      severityText: l.text,
      body: l.body,
      attributes: l.attrs,
      context: l.span === 'parent' ? parentCtx : l.span === 'child' ? childCtx : context.active(),
    });
  }
  child.end();
  parent.end();
  await tp.forceFlush();
  await lp.forceFlush();
  // All six records in one OTLP request, as a batching SDK would send them.
  const logExporter = wrap(new OTLPLogExporter({ url: `${httpUrl}/v1/logs` }), logResults);
  await new Promise((resolve) => logExporter.export(records, resolve));
  await tp.shutdown();
  await lp.shutdown();
  await logExporter.shutdown();
  return { ids, traceResults, logResults };
}

describe('loki and otlp exporters end to end from the JS SDK', () => {
  let loki;
  let lokiJson;
  let lokiLogfmt;
  let tempo;
  let otlpHttp;
  let col;
  let sent;

  before(async () => {
    loki = await startSink(LokiSink);
    lokiJson = await startSink(LokiSink, { name: 'loki-json-sink' });
    lokiLogfmt = await startSink(LokiSink, { name: 'loki-logfmt-sink' });
    tempo = await startSink(OtlpGrpcSink, { name: 'tempo-sink' });
    otlpHttp = await startSink(OtlpHttpSink);
    col = await startCollector({
      configText: (ports) =>
        exporterPipelineConfig(ports, {
          exporters: {
            loki: { endpoint: loki.pushUrl, tenant_id: TENANT },
            'loki/json': { endpoint: lokiJson.pushUrl, format: 'json' },
            'loki/logfmt': { endpoint: lokiLogfmt.pushUrl, structured_metadata: false, headers: { 'X-Test-Header': 'logfmt' } },
            otlp_grpc: { endpoint: tempo.endpoint, tls: { insecure: true } },
            'otlp_http/mirror': { endpoint: otlpHttp.url, compression: 'gzip', headers: { 'X-Test-Header': 'mirror' } },
          },
          pipelines: { logs: ['loki', 'loki/json', 'loki/logfmt', 'otlp_http/mirror'], traces: ['otlp_grpc', 'otlp_http/mirror'] },
        }),
    });
    sent = await sendTelemetry(col.httpUrl);
    assert.ok(sent.traceResults.length >= 1 && sent.traceResults.every((r) => r.code === 0), 'SDK trace exports succeeded');
    assert.equal(sent.logResults.length, 1);
    assert.equal(sent.logResults[0].code, 0, `SDK log export: ${sent.logResults[0].error}`);
    await loki.waitFor((s) => s.entries().length >= LOGS.length, { what: `${LOGS.length} Loki entries` });
    await lokiJson.waitFor((s) => s.entries().length >= LOGS.length, { what: `${LOGS.length} Loki JSON entries` });
    await lokiLogfmt.waitFor((s) => s.entries().length >= LOGS.length, { what: `${LOGS.length} Loki logfmt entries` });
    await tempo.waitFor((s) => flattenSpans(s.received('traces')).length >= 2, { what: '2 spans at the OTLP gRPC sink' });
    await otlpHttp.waitFor((s) => flattenSpans(s.received('traces')).length >= 2 && s.received('logs').length >= 1, {
      what: 'spans and logs at the OTLP/HTTP sink',
    });
  });

  after(async () => {
    const stopped = await stopAndClean(col);
    await loki?.close();
    await lokiJson?.close();
    await lokiLogfmt?.close();
    await tempo?.close();
    await otlpHttp?.close();
    assert.equal(stopped, null, 'a clean exit on SIGTERM');
  });

  describe('loki', () => {
    test('the push requests are snappy protobuf with the Loki headers and the tenant', () => {
      assert.deepEqual(loki.decodeErrors(), []);
      for (const r of loki.requests) {
        assert.equal(r.method, 'POST');
        assert.equal(r.headers['content-type'], 'application/x-protobuf');
        assert.equal(r.headers['content-encoding'], 'snappy');
        assert.equal(r.headers['x-scope-orgid'], TENANT);
        assert.ok(r.headers['user-agent'], 'a User-Agent');
      }
    });

    test('every record arrives once, with its stream labels', () => {
      const entries = loki.entries();
      assert.equal(entries.length, LOGS.length, JSON.stringify(entries, (k, v) => (typeof v === 'bigint' ? String(v) : v)));
      for (const e of entries) {
        assert.equal(e.labels.service_name, 'orders-api');
        assert.equal(e.labels.service_namespace, 'shop');
        assert.equal(e.labels.deployment_environment, 'e2e');
        // Loki's default index labels include service.instance.id; other resource attributes and
        // the record attributes stay out of the labels (they are structured metadata).
        assert.equal(e.labels.service_instance_id, 'orders-1');
        assert.equal(e.labels.host_name, undefined);
        assert.equal(e.labels.order_id, undefined);
        for (const k of Object.keys(e.labels)) assert.match(k, /^[a-zA-Z_][a-zA-Z0-9_]*$/);
      }
    });

    test('the severity is the level label, one stream per label set', () => {
      const streams = loki.streams();
      const levels = streams.map((s) => s.labelMap.level).sort();
      // info, warn and error streams (a stream may appear in more than one request).
      assert.deepEqual([...new Set(levels)], ['error', 'info', 'warn']);
      const keys = new Set(streams.map((s) => JSON.stringify(Object.entries(s.labelMap).sort())));
      const perRequest = loki.accepted().map((r) => r.decoded.streams.map((s) => JSON.stringify(Object.entries(s.labelMap).sort())));
      for (const list of perRequest) assert.equal(new Set(list).size, list.length, 'a label set appears once per request');
      assert.equal(keys.size, 3);
    });

    test('lines are the bodies: strings as is, maps as JSON', () => {
      const byTs = new Map(loki.entries().map((e) => [e.tsNs, e]));
      for (const l of LOGS) {
        const e = byTs.get(ns(l.at));
        assert.ok(e, `entry at ${ns(l.at)} (${JSON.stringify(l.body)})`);
        if (typeof l.body === 'string') assert.equal(e.line, l.body);
        else assert.deepEqual(JSON.parse(e.line), l.body);
      }
    });

    test('timestamps are exact to the nanosecond and a stream is in timestamp order', () => {
      const info = loki.streams().filter((s) => s.labelMap.level === 'info');
      const ts = info.flatMap((s) => s.entries.map((e) => e.tsNs));
      assert.deepEqual(ts, [ns(1000456), ns(2000789), ns(3000123), ns(6000003)]);
      assert.deepEqual(
        info.flatMap((s) => s.entries.map((e) => e.line)),
        ['order 1 created', 'order 2 created', 'order 3 created', 'outside any span'],
      );
    });

    test('trace_id, span_id and the other attributes are structured metadata', () => {
      const byLine = new Map(loki.entries().map((e) => [e.line, e]));
      const p = sent.ids.parent;
      const c = sent.ids.child;
      const o1 = byLine.get('order 1 created');
      assert.equal(o1.metadata.trace_id, p.traceId);
      assert.equal(o1.metadata.span_id, p.spanId);
      assert.equal(o1.metadata.order_id, '1');
      const db = byLine.get('db timeout');
      assert.equal(db.metadata.trace_id, c.traceId);
      assert.equal(db.metadata.span_id, c.spanId);
      assert.equal(db.metadata.db_system, 'postgresql');
      assert.equal(db.metadata.retryable, 'true');
      assert.equal(o1.metadata.host_name, 'test-host', 'the other resource attributes are metadata');
      const outside = byLine.get('outside any span');
      assert.equal(outside.metadata.trace_id, undefined, 'no trace id outside a span');
      assert.equal(outside.metadata.span_id, undefined);
      for (const e of loki.entries()) {
        for (const [k, v] of Object.entries(e.metadata)) {
          assert.match(k, /^[a-zA-Z_][a-zA-Z0-9_]*$/, `metadata name ${k}`);
          assert.notEqual(v, '', `metadata ${k} is not empty`);
        }
      }
    });

    test('format: json sends the same streams, lines, timestamps and metadata as JSON', () => {
      assert.deepEqual(lokiJson.decodeErrors(), []);
      for (const r of lokiJson.requests) assert.match(r.headers['content-type'], /^application\/json/);
      const norm = (sink) =>
        sink
          .entries()
          .map((e) => JSON.stringify([String(e.tsNs), e.line, Object.entries(e.labels).sort(), Object.entries(e.metadata).sort()]))
          .sort();
      assert.deepEqual(norm(lokiJson), norm(loki));
    });

    test('structured_metadata: false appends the metadata to the line as logfmt; headers are sent', () => {
      assert.deepEqual(lokiLogfmt.decodeErrors(), []);
      for (const r of lokiLogfmt.requests) {
        assert.equal(r.headers['x-test-header'], 'logfmt');
        assert.equal(r.headers['x-scope-orgid'], undefined, 'no tenant configured, no X-Scope-OrgID');
      }
      const entries = lokiLogfmt.entries();
      assert.equal(entries.length, LOGS.length);
      const p = sent.ids.parent;
      const o1 = entries.find((e) => e.line.startsWith('order 1 created '));
      assert.ok(o1, entries.map((e) => e.line).join('\n'));
      assert.deepEqual(o1.metadata, {});
      const pairs = Object.fromEntries(
        [...o1.line.slice('order 1 created '.length).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)].map((m) => [m[1], m[2]]),
      );
      assert.equal(pairs.trace_id, p.traceId);
      assert.equal(pairs.span_id, p.spanId);
      assert.equal(pairs.order_id, '1');
      assert.equal(pairs.host_name, 'test-host');
      // The labels do not change with the option.
      assert.equal(o1.labels.service_name, 'orders-api');
      assert.equal(o1.labels.level, 'info');
    });
  });

  describe('otlp_grpc (Tempo)', () => {
    test('the trace arrives whole: names, ids, parent, kinds, attributes, event, status', () => {
      assert.deepEqual(tempo.decodeErrors(), []);
      const spans = flattenSpans(tempo.received('traces'));
      assert.equal(spans.length, 2);
      const parent = spans.find((s) => s.name === 'GET /orders');
      const child = spans.find((s) => s.name === 'SELECT orders');
      assert.ok(parent && child, spans.map((s) => s.name).join(','));
      assert.equal(parent.traceId, sent.ids.parent.traceId);
      assert.equal(parent.spanId, sent.ids.parent.spanId);
      assert.equal(parent.parentSpanId ?? '', '');
      assert.equal(child.traceId, sent.ids.parent.traceId);
      assert.equal(child.spanId, sent.ids.child.spanId);
      assert.equal(child.parentSpanId, sent.ids.parent.spanId);
      assert.equal(parent.kind, 2); // SERVER
      assert.equal(child.kind, 3); // CLIENT
      assert.deepEqual(parent.attrs, { 'http.request.method': 'GET', 'http.route': '/orders', 'http.response.status_code': 200 });
      assert.deepEqual(child.attrs, { 'db.system': 'postgresql', 'db.rows': 3 });
      assert.equal(child.events.length, 1);
      assert.equal(child.events[0].name, 'retry');
      assert.equal(child.status.code, 2);
      assert.equal(child.status.message, 'timeout');
      assert.ok(BigInt(parent.endTimeUnixNano) >= BigInt(parent.startTimeUnixNano));
      for (const s of spans) {
        assert.equal(s.resource['service.name'], 'orders-api');
        assert.equal(s.resource['service.instance.id'], 'orders-1');
        assert.equal(s.scope.name, 'otelc-e2e-tracer');
        assert.equal(s.scope.version, '2.0.0');
      }
    });

    test('the gRPC request carries the standard metadata', () => {
      for (const r of tempo.requests) {
        assert.equal(r.signal, 'traces');
        // grpc-js keeps content-type and te to itself; the user agent is visible.
        assert.match(String(r.metadata['user-agent']), /grpc/, JSON.stringify(r.metadata));
      }
    });
  });

  describe('otlp_http', () => {
    test('traces and logs arrive as gzip protobuf on /v1/traces and /v1/logs', () => {
      assert.deepEqual(otlpHttp.decodeErrors(), []);
      for (const r of otlpHttp.requests) {
        assert.equal(r.headers['content-type'], 'application/x-protobuf');
        assert.equal(r.headers['content-encoding'], 'gzip');
        assert.equal(r.headers['x-test-header'], 'mirror');
      }
      const spans = flattenSpans(otlpHttp.received('traces'));
      assert.deepEqual(spans.map((s) => s.name).sort(), ['GET /orders', 'SELECT orders']);
      const child = spans.find((s) => s.name === 'SELECT orders');
      assert.equal(child.parentSpanId, sent.ids.parent.spanId);
      const logs = otlpHttp.received('logs').flatMap((req) =>
        req.resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords)),
      );
      assert.equal(logs.length, LOGS.length);
      const withTrace = logs.filter((l) => l.traceId);
      assert.equal(withTrace.length, 5);
    });
  });
});

// OTLP → OTLP must pass the bytes on as they came (no decode and re-encode): a request sent by
// hand through a collector without a batch processor reaches the gRPC sink byte for byte.
describe('otlp_grpc passes OTLP protobuf through unchanged', () => {
  let tempo;
  let col;

  before(async () => {
    tempo = await startSink(OtlpGrpcSink, { name: 'tempo-sink' });
    col = await startCollector({
      configText: (ports) =>
        exporterPipelineConfig(ports, {
          processors: {},
          exporters: { otlp_grpc: { endpoint: tempo.endpoint, tls: { insecure: true }, compression: 'none' } },
          pipelines: { traces: ['otlp_grpc'], logs: ['otlp_grpc'], metrics: ['otlp_grpc'] },
        }),
    });
  });

  after(async () => {
    const stopped = await stopAndClean(col);
    await tempo?.close();
    assert.equal(stopped, null, 'a clean exit on SIGTERM');
  });

  test('the exported bytes equal the received bytes', async () => {
    const body = spansRequest('passthrough', 20);
    const r = await httpRequest(`${col.httpUrl}/v1/traces`, {
      headers: { 'content-type': 'application/x-protobuf' },
      body,
    });
    assert.equal(r.status, 200);
    await tempo.waitFor((s) => s.requests.length >= 1, { what: 'the forwarded request' });
    assert.equal(tempo.requests.length, 1);
    assert.ok(tempo.requests[0].raw.equals(body), `forwarded ${tempo.requests[0].size} bytes, sent ${body.length}`);
    const spans = flattenSpans(tempo.received('traces'));
    assert.equal(spans.length, 20);
    assert.deepEqual(
      spans.map((s) => s.name),
      Array.from({ length: 20 }, (_, i) => `passthrough-${i}`),
    );
  });

  test('metrics and logs go through the same exporter instance', async () => {
    const metrics = encodeOtlp('metrics', {
      resourceMetrics: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'm' } }] },
          scopeMetrics: [{ metrics: [{ name: 'g', gauge: { dataPoints: [{ asDouble: 1.5, timeUnixNano: String(Date.now() * 1e6) }] } }] }],
        },
      ],
    });
    const r = await httpRequest(`${col.httpUrl}/v1/metrics`, { headers: { 'content-type': 'application/x-protobuf' }, body: metrics });
    assert.equal(r.status, 200);
    await tempo.waitFor((s) => s.received('metrics').length >= 1, { what: 'metrics at the gRPC sink' });
    const got = tempo.received('metrics')[0];
    assert.equal(got.resourceMetrics[0].scopeMetrics[0].metrics[0].name, 'g');
    assert.equal(got.resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].asDouble, 1.5);
  });
});
