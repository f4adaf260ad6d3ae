// Faults between the exporters and their backends. A scriptable sink (lib/sinks.mjs) plays the
// backend of each exporter type (prometheus_remote_write, loki, otlp_http, and otlp_grpc with the
// gRPC equivalents: UNAVAILABLE, RESOURCE_EXHAUSTED with a RetryInfo, INVALID_ARGUMENT) and
// answers: 503 then 200 (nothing lost, every item exactly once), 429 with Retry-After: 2 (the
// retry waits at least 2 s), 400 (dropped, counted in the self-metrics, exactly one request), not
// listening for 3 s then back (delivered after), and slow (2 s per answer, a queue of 2 batches
// and one consumer) while clients flood the collector: the receiver then refuses with a retryable
// status (HTTP 503 / gRPC UNAVAILABLE), whatever it accepted is delivered exactly once, and the
// peak RSS stays bounded. Retry intervals are short (100 ms) so that the tests are fast.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  grpc,
  grpcUnary,
  httpRequest,
  LOGS_EXPORT,
  METRICS_EXPORT,
  rawGrpcClient,
  TRACE_EXPORT,
} from './lib/clients.mjs';
import { flattenSpans, metricValue, startCollector } from './lib/collector.mjs';
import { gaugeRequest, logsRequest, spansRequest } from './lib/proto.mjs';
import {
  exporterPipelineConfig,
  LokiSink,
  OtlpGrpcSink,
  OtlpHttpSink,
  RemoteWriteSink,
  startSink,
  stopAndClean,
} from './lib/sinks.mjs';

const RETRY = { initial_interval: '100ms', max_interval: '500ms', max_elapsed_time: '60s' };

// The scripted answers of an HTTP backend: retryable, throttling with a delay, permanent.
const HTTP_ANSWERS = {
  ok: { status: 200 },
  unavailable: { status: 503 },
  throttle: { status: 429, headers: { 'retry-after': '2' } },
  bad: { status: 400, body: 'bad request: scripted' },
  badReason: 'http_400',
  statusOf: (r) => r.status,
};

// What differs between the exporter types: the sink, the signal, the config, how to build a
// request of n items tagged `tag`, and how to count those items at the sink.
const KINDS = {
  prometheus_remote_write: {
    Sink: RemoteWriteSink,
    signal: 'metrics',
    unit: 'metric_points',
    path: '/v1/metrics',
    grpcMethod: METRICS_EXPORT,
    config: (sink) => ({ endpoint: sink.writeUrl }),
    // otelcol's remote-write exporter has its own queue key.
    queueKey: 'remote_write_queue',
    answers: HTTP_ANSWERS,
    request: (tag, n) => gaugeRequest(tag, n),
    // Each item is a gauge point with attribute index=i: one series per item.
    delivered: (sink, tag) => {
      const out = [];
      for (const r of sink.accepted()) {
        for (const ts of r.decoded.timeseries) {
          const m = Object.fromEntries(ts.labels.map((l) => [l.name, l.value]));
          if (m.__name__ === tag) for (let i = 0; i < ts.samples.length; i++) out.push(m.index);
        }
      }
      return out;
    },
    requestsWith: (sink, tag) =>
      sink.requests.filter((r) => r.decoded?.timeseries.some((ts) => ts.labels.some((l) => l.name === '__name__' && l.value === tag))),
  },
  loki: {
    Sink: LokiSink,
    signal: 'logs',
    unit: 'log_records',
    path: '/v1/logs',
    grpcMethod: LOGS_EXPORT,
    config: (sink) => ({ endpoint: sink.pushUrl }),
    answers: HTTP_ANSWERS,
    request: (tag, n) => logsRequest(tag, n),
    delivered: (sink, tag) =>
      sink
        .entries()
        .map((e) => e.line)
        .filter((l) => l.startsWith(`${tag}-`)),
    requestsWith: (sink, tag) =>
      sink.requests.filter((r) => r.decoded?.streams.some((st) => st.entries.some((e) => e.line.startsWith(`${tag}-`)))),
  },
  otlp_grpc: {
    Sink: OtlpGrpcSink,
    signal: 'traces',
    unit: 'spans',
    path: '/v1/traces',
    grpcMethod: TRACE_EXPORT,
    config: (sink) => ({ endpoint: sink.endpoint, tls: { insecure: true } }),
    request: (tag, n) => spansRequest(tag, n),
    delivered: (sink, tag) =>
      flattenSpans(sink.received('traces'))
        .map((s) => s.name)
        .filter((n) => n.startsWith(`${tag}-`)),
    requestsWith: (sink, tag) =>
      sink.requests.filter(
        (r) => r.decoded && flattenSpans([r.decoded.request]).some((s) => s.name.startsWith(`${tag}-`)),
      ),
    // OTLP/gRPC: UNAVAILABLE is retryable, RESOURCE_EXHAUSTED only with a RetryInfo (whose delay
    // is the throttle), INVALID_ARGUMENT permanent.
    answers: {
      ok: { code: grpc.status.OK },
      unavailable: { code: grpc.status.UNAVAILABLE },
      throttle: { code: grpc.status.RESOURCE_EXHAUSTED, retryDelayMs: 2000 },
      bad: { code: grpc.status.INVALID_ARGUMENT, details: 'bad request: scripted' },
      badReason: 'grpc_invalid_argument',
      statusOf: (r) => r.code,
    },
  },
  otlp_http: {
    Sink: OtlpHttpSink,
    signal: 'traces',
    unit: 'spans',
    path: '/v1/traces',
    grpcMethod: TRACE_EXPORT,
    config: (sink) => ({ endpoint: sink.url, compression: 'none' }),
    answers: HTTP_ANSWERS,
    request: (tag, n) => spansRequest(tag, n),
    delivered: (sink, tag) =>
      flattenSpans(sink.received('traces'))
        .map((s) => s.name)
        .filter((n) => n.startsWith(`${tag}-`)),
    requestsWith: (sink, tag) =>
      sink.requests.filter(
        (r) => r.decoded && flattenSpans([r.decoded.request]).some((s) => s.name.startsWith(`${tag}-`)),
      ),
  },
};

async function post(col, kind, body) {
  return httpRequest(`${col.httpUrl}${kind.path}`, { headers: { 'content-type': 'application/x-protobuf' }, body });
}

async function selfMetric(col, name, labels) {
  return metricValue((await col.scrape()).samples, name, labels) ?? 0;
}

async function waitMetric(col, name, labels, want, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  let v;
  for (;;) {
    v = await selfMetric(col, name, labels);
    if (v >= want || Date.now() > deadline) return v;
    await sleep(50);
  }
}

function assertExactlyOnce(items, n, what) {
  assert.equal(items.length, n, `${what}: ${items.length} items delivered, want ${n}`);
  assert.equal(new Set(items).size, n, `${what}: duplicates among ${items.length} delivered items`);
}

function vmHWMkB(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function vmRSSkB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

for (const [type, kind] of Object.entries(KINDS)) {
  describe(`${type}: backend faults`, () => {
    let sink;
    let col;
    const N = 10;
    const sentLabels = { exporter: type };
    const A = kind.answers;
    const retryable = kind.Sink === OtlpGrpcSink ? 'UNAVAILABLE' : '503';
    const throttle = kind.Sink === OtlpGrpcSink ? 'RESOURCE_EXHAUSTED with RetryInfo 2 s' : '429 with Retry-After: 2';
    const permanent = kind.Sink === OtlpGrpcSink ? 'INVALID_ARGUMENT' : '400';

    before(async () => {
      sink = await startSink(kind.Sink, { name: `${type}-sink` });
      col = await startCollector({
        configText: (ports) =>
          exporterPipelineConfig(ports, {
            exporters: { [type]: { ...kind.config(sink), retry_on_failure: RETRY, timeout: '5s' } },
            pipelines: { [kind.signal]: [type] },
          }),
      });
    });

    after(async () => {
      const stopped = await stopAndClean(col);
      await sink?.close();
      assert.equal(stopped, null, 'a clean exit on SIGTERM');
    });

    test(`${retryable} twice, then OK: delivered once, nothing lost, nothing counted as failed`, async () => {
      sink.reset();
      const failedBefore = await selfMetric(col, `otelcol_exporter_send_failed_${kind.unit}`, sentLabels);
      const sentBefore = await selfMetric(col, `otelcol_exporter_sent_${kind.unit}`, sentLabels);
      sink.script([A.unavailable, A.unavailable], A.ok);
      const r = await post(col, kind, kind.request('f503', N));
      assert.equal(r.status, 200);
      await sink.waitFor((s) => kind.delivered(s, 'f503').length >= N, { what: 'the retried request' });
      await sleep(500); // a duplicate would show by now
      assertExactlyOnce(kind.delivered(sink, 'f503'), N, '503 then 200');
      const reqs = kind.requestsWith(sink, 'f503');
      assert.deepEqual(reqs.map(A.statusOf), [A.unavailable, A.unavailable, A.ok].map(A.statusOf));
      assert.equal(await waitMetric(col, `otelcol_exporter_sent_${kind.unit}`, sentLabels, sentBefore + N), sentBefore + N);
      assert.equal(await selfMetric(col, `otelcol_exporter_send_failed_${kind.unit}`, sentLabels), failedBefore);
    });

    test(`${throttle} → the retry waits at least 2 s`, async () => {
      sink.reset();
      sink.script([A.throttle], A.ok);
      const r = await post(col, kind, kind.request('f429', N));
      assert.equal(r.status, 200);
      await sink.waitFor((s) => kind.delivered(s, 'f429').length >= N, { what: 'the request after Retry-After', timeoutMs: 10000 });
      const reqs = kind.requestsWith(sink, 'f429');
      assert.deepEqual(reqs.map(A.statusOf), [A.throttle, A.ok].map(A.statusOf));
      const waited = reqs[1].at - reqs[0].at;
      assert.ok(waited >= 1950, `retried after ${waited} ms, Retry-After asked for 2000`);
      assert.ok(waited < 4000, `retried after ${waited} ms: Retry-After should not add the backoff on top`);
      assertExactlyOnce(kind.delivered(sink, 'f429'), N, '429 then 200');
    });

    test(`${permanent} → dropped after one request, counted with the status as the reason`, async () => {
      sink.reset();
      const failedBefore = await selfMetric(col, `otelcol_exporter_send_failed_${kind.unit}`, sentLabels);
      const droppedBefore = await selfMetric(col, 'otelcol_dropped_items', { component: type, reason: A.badReason });
      sink.script([], A.bad);
      const r = await post(col, kind, kind.request('f400', N));
      assert.equal(r.status, 200, 'the receiver accepted the data before the exporter saw the 400');
      await sink.waitFor((s) => kind.requestsWith(s, 'f400').length >= 1, { what: 'the request answered 400' });
      // Ten retry intervals: a retry storm would show many requests.
      await sleep(1500);
      assert.equal(kind.requestsWith(sink, 'f400').length, 1, 'exactly one request, no retry');
      assert.equal(
        await waitMetric(col, `otelcol_exporter_send_failed_${kind.unit}`, sentLabels, failedBefore + N),
        failedBefore + N,
      );
      assert.equal(
        await selfMetric(col, 'otelcol_dropped_items', { component: type, reason: A.badReason }),
        droppedBefore + N,
      );
      sink.script([], A.ok);
    });

    test('backend down for 3 s, then back: delivered after, exactly once', async () => {
      sink.reset();
      const port = sink.port;
      await sink.close();
      const r = await post(col, kind, kind.request('fdown', N));
      assert.equal(r.status, 200, 'the queue takes the data while the backend is down');
      await sleep(3000);
      assert.ok(col.alive(), 'the collector is still running');
      await sink.listen(port);
      await sink.waitFor((s) => kind.delivered(s, 'fdown').length >= N, { what: 'the data after the backend came back', timeoutMs: 10000 });
      await sleep(300);
      assertExactlyOnce(kind.delivered(sink, 'fdown'), N, 'down then up');
    });
  });
}

// Backpressure: a slow backend, a queue of two batches and one consumer, no batch processor (it
// never refuses by design; the memory_limiter bounds it instead), while four HTTP and four gRPC
// clients send as fast as they are answered for 4 s.
for (const [type, kind] of Object.entries(KINDS)) {
  describe(`${type}: slow backend pushes back to the receiver`, () => {
    let sink;
    let col;
    // About 150 KB a request: a few hundred refused requests would be tens of MB if anything kept
    // them.
    const ITEMS = 2000;

    before(async () => {
      sink = await startSink(kind.Sink, { name: `${type}-slow-sink` });
      sink.script([], { ...kind.answers.ok, delayMs: 2000 });
      col = await startCollector({
        configText: (ports) =>
          exporterPipelineConfig(ports, {
            processors: {},
            exporters: {
              [type]: {
                ...kind.config(sink),
                timeout: '10s',
                retry_on_failure: RETRY,
                [kind.queueKey ?? 'sending_queue']: { enabled: true, queue_size: 2, num_consumers: 1 },
              },
            },
            pipelines: { [kind.signal]: [type] },
          }),
      });
    });

    after(async () => {
      const stopped = await stopAndClean(col);
      await sink?.close();
      assert.equal(stopped, null, 'a clean exit on SIGTERM');
    });

    test('the receiver refuses with 503 / UNAVAILABLE, memory stays bounded, nothing accepted is lost', async (t) => {
      const idleRss = vmRSSkB(col.proc.pid);
      const grpcClient = rawGrpcClient(col.grpcEndpoint);
      const stats = { httpOk: 0, http503: 0, httpOther: [], grpcOk: 0, grpcUnavailable: 0, grpcOther: [] };
      const accepted = []; // tags whose items the collector accepted
      let seq = 0;
      const stopAt = Date.now() + 4000;
      const httpWorker = async () => {
        while (Date.now() < stopAt) {
          const tag = `slow${seq++}`;
          const r = await post(col, kind, kind.request(tag, ITEMS));
          if (r.status === 200) {
            stats.httpOk++;
            accepted.push(tag);
          } else if (r.status === 503 || r.status === 429) stats.http503++;
          else stats.httpOther.push(r.status);
          if (r.status !== 200) await sleep(20);
        }
      };
      const grpcWorker = async () => {
        while (Date.now() < stopAt) {
          const tag = `slow${seq++}`;
          const r = await grpcUnary(grpcClient, kind.grpcMethod, kind.request(tag, ITEMS));
          if (r.code === grpc.status.OK) {
            stats.grpcOk++;
            accepted.push(tag);
          } else if (r.code === grpc.status.UNAVAILABLE) stats.grpcUnavailable++;
          else stats.grpcOther.push(`${r.code} ${r.details}`);
          if (r.code !== grpc.status.OK) await sleep(20);
        }
      };
      try {
        await Promise.all([...Array(4)].map(httpWorker).concat([...Array(4)].map(grpcWorker)));
      } finally {
        grpcClient.close();
      }
      const hwm = vmHWMkB(col.proc.pid);
      t.diagnostic(`accepted ${accepted.length} requests of ${ITEMS} items; ${JSON.stringify(stats)}; ` +
        `RSS idle ${idleRss} kB, peak ${hwm} kB`);
      assert.deepEqual(stats.httpOther, [], 'no HTTP status other than 200 and 503/429');
      assert.deepEqual(stats.grpcOther, [], 'no gRPC code other than OK and UNAVAILABLE');
      assert.ok(stats.http503 > 0, `HTTP clients were refused (${JSON.stringify(stats)})`);
      assert.ok(stats.grpcUnavailable > 0, `gRPC clients were refused (${JSON.stringify(stats)})`);
      // At most the queue (2), the one in flight and a few being admitted can be accepted in 4 s
      // against a backend that takes 2 s per batch.
      assert.ok(accepted.length <= 12, `accepted ${accepted.length} requests in 4 s (${JSON.stringify(stats)})`);
      assert.ok(hwm - idleRss < 64 * 1024, `peak RSS ${hwm} kB vs ${idleRss} kB idle`);
      // Everything accepted is delivered, exactly once: the queue drains at one batch per 2 s.
      await sink.waitFor((s) => accepted.every((tag) => kind.delivered(s, tag).length >= ITEMS), {
        what: `all ${accepted.length} accepted requests`,
        timeoutMs: 2000 * (accepted.length + 3),
        intervalMs: 200,
      });
      for (const tag of accepted) assertExactlyOnce(kind.delivered(sink, tag), ITEMS, tag);
      const refused = await selfMetric(col, `otelcol_receiver_refused_${kind.unit}`, {});
      assert.equal(refused, (stats.http503 + stats.grpcUnavailable) * ITEMS, 'the receiver counts what it refused');
      const enqueueFailed = await selfMetric(col, `otelcol_exporter_enqueue_failed_${kind.unit}`, { exporter: type });
      assert.ok(enqueueFailed > 0, 'the full queue is counted in enqueue_failed');
    });
  });
}

// Giving up and shutting down: with retry_on_failure.max_elapsed_time 1s a backend that answers
// 503 forever makes the exporter drop the data after a few retries and count it as
// retry_exhausted; and a SIGTERM while data waits in the batch processor (timeout 2 s) still
// delivers it before the process exits (the exporters drain their queues with a deadline).
for (const [type, kind] of Object.entries(KINDS)) {
  describe(`${type}: retry exhaustion and shutdown`, () => {
    let sink;
    let col;
    const N = 10;
    const A = kind.answers;

    before(async () => {
      sink = await startSink(kind.Sink, { name: `${type}-exhaust-sink` });
      col = await startCollector({
        configText: (ports) =>
          exporterPipelineConfig(ports, {
            processors: { batch: { timeout: '2s' } },
            exporters: {
              [type]: {
                ...kind.config(sink),
                retry_on_failure: { initial_interval: '100ms', max_interval: '200ms', max_elapsed_time: '1s' },
              },
            },
            pipelines: { [kind.signal]: [type] },
          }),
      });
    });

    after(async () => {
      const stopped = await stopAndClean(col);
      await sink?.close();
      assert.equal(stopped, null, 'a clean exit on SIGTERM');
    });

    test('a backend that never recovers: a few retries, then dropped as retry_exhausted', async () => {
      sink.reset();
      sink.script([], A.unavailable);
      const labels = { component: type, reason: 'retry_exhausted' };
      const before = await selfMetric(col, 'otelcol_dropped_items', labels);
      const failedBefore = await selfMetric(col, `otelcol_exporter_send_failed_${kind.unit}`, { exporter: type });
      const r = await post(col, kind, kind.request('fexhaust', N));
      assert.equal(r.status, 200);
      // 2 s in the batch processor, then about 1 s of retries.
      assert.equal(await waitMetric(col, 'otelcol_dropped_items', labels, before + N, 8000), before + N);
      assert.equal(await selfMetric(col, `otelcol_exporter_send_failed_${kind.unit}`, { exporter: type }), failedBefore + N);
      const attempts = kind.requestsWith(sink, 'fexhaust');
      const span = attempts.at(-1).at - attempts[0].at;
      assert.ok(attempts.length >= 3 && attempts.length <= 20, `${attempts.length} attempts`);
      assert.ok(span <= 1500, `retried for ${span} ms with max_elapsed_time 1s`);
      await sleep(500);
      assert.equal(kind.requestsWith(sink, 'fexhaust').length, attempts.length, 'no attempt after giving up');
      sink.script([], A.ok);
    });

    test('SIGTERM while data waits in the batch processor: delivered before the exit', async () => {
      sink.reset();
      sink.script([], { ...A.ok, delayMs: 300 });
      const r = await post(col, kind, kind.request('fshutdown', N));
      assert.equal(r.status, 200);
      const exit = await col.stop({ timeoutMs: 15000 });
      assert.deepEqual(exit, { code: 0, signal: null }, col.stderrTail());
      assertExactlyOnce(kind.delivered(sink, 'fshutdown'), N, 'flushed at shutdown');
    });
  });
}
