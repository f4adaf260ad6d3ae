// The prometheus_remote_write exporter against a real Prometheus (env PROMETHEUS_BIN, started
// with --web.enable-remote-write-receiver and native histograms): the OpenTelemetry JS SDK sends a
// counter, an up-down counter, a sync and an observable gauge, a histogram and an exponential
// histogram (cumulative, known values and attributes) over OTLP/HTTP to the collector (otlp →
// memory_limiter → batch → prometheus_remote_write → Prometheus's /api/v1/write); the test then
// asks Prometheus's HTTP API what it stored: names with unit and _total suffixes, job/instance,
// otel_scope_* and attribute labels, values, histogram buckets with cumulative counts, _sum,
// _count, the native histogram and target_info. A second part checks that samples of one series
// sent in many requests reach Prometheus in order (it refuses out-of-order samples).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { AggregationTemporalityPreference } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationType, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';

import { httpRequest } from './lib/clients.mjs';
import { metricValue, startCollector } from './lib/collector.mjs';
import { PROMETHEUS_BIN, prometheusAvailable, startPrometheus } from './lib/prometheus.mjs';
import { encodeOtlp, exporterPipelineConfig, stopAndClean } from './lib/sinks.mjs';

const RESOURCE = {
  'service.name': 'checkout',
  'service.namespace': 'shop',
  'service.instance.id': 'inst-1',
  'deployment.environment': 'e2e',
  'host.name': 'test-host',
};
const JOB = 'shop/checkout';
const INSTANCE = 'inst-1';
const SCOPE = { otel_scope_name: 'otelc-prom-test', otel_scope_version: '1.0.0' };
// Without Prometheus the tests are skipped, except under CI (which installs it), where its absence
// is a failure rather than a silent skip.
const SKIP = !prometheusAvailable() && !process.env.CI && `${PROMETHEUS_BIN} not found (Debian package prometheus)`;

const DURATIONS = [0.05, 0.2, 0.3, 0.7, 3, 10]; // into bounds 0.1, 0.5, 1, 5 (+Inf)
const BOUNDS = [0.1, 0.5, 1, 5];
const RPC_MS = [1, 2, 4, 8, 100]; // an exponential histogram

// Sends the fixed set of instruments once and returns the SDK's export results.
async function sendMetrics(url) {
  const results = [];
  const inner = new OTLPMetricExporter({
    url,
    temporalityPreference: AggregationTemporalityPreference.CUMULATIVE,
    timeoutMillis: 10000,
  });
  let closed = false;
  // Records every export result; exports after the test's flush are answered without sending,
  // so that the provider's shutdown does not write a second sample of each series.
  const exporter = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'export') {
        return (items, cb) => {
          if (closed) return cb({ code: 0 });
          target.export(items, (res) => {
            results.push(res);
            cb(res);
          });
        };
      }
      const v = Reflect.get(target, prop);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3600000 });
  const mp = new MeterProvider({
    resource: resourceFromAttributes(RESOURCE),
    readers: [reader],
    // One exponential histogram, which remote write carries as a native histogram.
    views: [{ instrumentName: 'rpc.server.duration', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
  });
  const meter = mp.getMeter('otelc-prom-test', '1.0.0');

  const orders = meter.createCounter('orders.created', { unit: '{order}', description: 'Orders created' });
  orders.add(1, { region: 'eu', 'payment.method': 'card' });
  orders.add(2, { region: 'eu', 'payment.method': 'card' });
  orders.add(5, { region: 'us', 'payment.method': 'card' });

  const io = meter.createCounter('network.io', { unit: 'By' });
  io.add(1536, { direction: 'transmit' });

  const depth = meter.createUpDownCounter('queue.depth', { unit: '{item}' });
  depth.add(10, { queue: 'jobs' });
  depth.add(-3, { queue: 'jobs' });

  const cpu = meter.createGauge('cpu.utilization', { unit: '1' });
  cpu.record(0.25, { cpu: '0' });

  const mem = meter.createObservableGauge('memory.used', { unit: 'By' });
  mem.addCallback((r) => r.observe(1048576, { 'memory.state': 'used' }));

  const hist = meter.createHistogram('http.server.request.duration', {
    unit: 's',
    advice: { explicitBucketBoundaries: BOUNDS },
  });
  for (const d of DURATIONS) hist.record(d, { 'http.route': '/orders', 'http.response.status_code': 200 });

  const rpc = meter.createHistogram('rpc.server.duration', { unit: 'ms' });
  for (const v of RPC_MS) rpc.record(v, { 'rpc.method': 'Get' });

  await reader.forceFlush();
  closed = true;
  await mp.shutdown();
  return results;
}

function valueOf(result) {
  return Number(result.value[1]);
}

describe('prometheus_remote_write exporter → real Prometheus', { skip: SKIP }, () => {
  let prom;
  let col;
  let startedAt;

  before(async () => {
    prom = await startPrometheus({ features: ['native-histograms'] });
    col = await startCollector({
      configText: (ports) =>
        exporterPipelineConfig(ports, {
          exporters: {
            prometheus_remote_write: {
              endpoint: prom.writeUrl,
              retry_on_failure: { initial_interval: '100ms', max_interval: '1s' },
            },
          },
          pipelines: { metrics: ['prometheus_remote_write'] },
        }),
    });
    startedAt = Date.now();
    const results = await sendMetrics(`${col.httpUrl}/v1/metrics`);
    assert.equal(results.length, 1, 'one export from the SDK');
    assert.equal(results[0].code, 0, `the collector accepted the SDK's export: ${results[0].error}`);
    // Everything is written in one remote-write request; wait for its last series.
    await prom.waitForQuery(`http_server_request_duration_seconds_count{job="${JOB}"}`, 1);
    await prom.waitForQuery(`target_info{job="${JOB}"}`, 1);
  });

  after(async () => {
    const stopped = await stopAndClean(col);
    await prom?.stop();
    assert.equal(stopped, null, 'a clean exit on SIGTERM');
  });

  test('a monotonic counter becomes <name>_total with job, instance, scope and attribute labels', async () => {
    const series = await prom.series('orders_created_total');
    assert.equal(series.length, 2, JSON.stringify(series));
    const eu = series.find((s) => s.region === 'eu');
    assert.deepEqual(eu, {
      __name__: 'orders_created_total',
      job: JOB,
      instance: INSTANCE,
      ...SCOPE,
      payment_method: 'card',
      region: 'eu',
    });
    const res = await prom.query(`orders_created_total{job="${JOB}",instance="${INSTANCE}"}`);
    const byRegion = Object.fromEntries(res.map((r) => [r.metric.region, valueOf(r)]));
    assert.deepEqual(byRegion, { eu: 3, us: 5 });
  });

  test('the unit becomes a suffix before _total (By → bytes)', async () => {
    const res = await prom.query('network_io_bytes_total');
    assert.equal(res.length, 1, JSON.stringify(res));
    assert.equal(valueOf(res[0]), 1536);
    assert.equal(res[0].metric.direction, 'transmit');
    assert.equal(res[0].metric.job, JOB);
  });

  test('an up-down counter is a gauge without _total, braces units dropped', async () => {
    const res = await prom.query(`queue_depth{job="${JOB}"}`);
    assert.equal(res.length, 1, JSON.stringify(res));
    assert.equal(valueOf(res[0]), 7);
    assert.equal(res[0].metric.queue, 'jobs');
    assert.deepEqual(await prom.query('queue_depth_total'), []);
  });

  test('gauges keep their value; unit 1 → _ratio, By → _bytes', async () => {
    const cpu = await prom.query(`cpu_utilization_ratio{job="${JOB}"}`);
    assert.equal(cpu.length, 1, JSON.stringify(cpu));
    assert.equal(valueOf(cpu[0]), 0.25);
    assert.equal(cpu[0].metric.cpu, '0');
    const mem = await prom.query(`memory_used_bytes{job="${JOB}"}`);
    assert.equal(mem.length, 1, JSON.stringify(mem));
    assert.equal(valueOf(mem[0]), 1048576);
    assert.equal(mem[0].metric.memory_state, 'used');
  });

  test('a histogram becomes cumulative _bucket{le} series with +Inf, _sum and _count', async () => {
    const buckets = await prom.query(`http_server_request_duration_seconds_bucket{job="${JOB}"}`);
    const byLe = Object.fromEntries(buckets.map((r) => [r.metric.le, valueOf(r)]));
    assert.deepEqual(byLe, { 0.1: 1, 0.5: 3, 1: 4, 5: 5, '+Inf': 6 });
    for (const b of buckets) {
      assert.equal(b.metric.http_route, '/orders');
      assert.equal(b.metric.http_response_status_code, '200');
      assert.equal(b.metric.instance, INSTANCE);
      assert.equal(b.metric.otel_scope_name, SCOPE.otel_scope_name);
    }
    const sum = await prom.query(`http_server_request_duration_seconds_sum{job="${JOB}"}`);
    assert.equal(sum.length, 1);
    assert.ok(Math.abs(valueOf(sum[0]) - 14.25) < 1e-9, `sum ${valueOf(sum[0])}`);
    const count = await prom.query(`http_server_request_duration_seconds_count{job="${JOB}"}`);
    assert.equal(valueOf(count[0]), 6);
    // PromQL over the buckets works as on scraped data.
    const q = await prom.query(`histogram_quantile(0.5, http_server_request_duration_seconds_bucket{job="${JOB}"})`);
    assert.equal(q.length, 1);
    assert.ok(valueOf(q[0]) > 0.1 && valueOf(q[0]) <= 0.5, `median ${valueOf(q[0])}`);
  });

  test('an exponential histogram becomes a native histogram', async () => {
    const count = await prom.waitForQuery(`histogram_count(rpc_server_duration_milliseconds{job="${JOB}"})`, 1, { timeoutMs: 5000 });
    assert.equal(valueOf(count[0]), RPC_MS.length);
    assert.equal(count[0].metric.rpc_method, 'Get');
    const sum = await prom.query(`histogram_sum(rpc_server_duration_milliseconds{job="${JOB}"})`);
    assert.equal(valueOf(sum[0]), RPC_MS.reduce((a, b) => a + b, 0));
    // Three of the five observations (1, 2, 4) lie below 4.5 ms, within the bucket resolution.
    const frac = await prom.query(`histogram_fraction(0, 4.5, rpc_server_duration_milliseconds{job="${JOB}"})`);
    assert.ok(Math.abs(valueOf(frac[0]) - 0.6) < 0.05, `fraction ${valueOf(frac[0])}`);
  });

  test('target_info carries the other resource attributes, one series per job/instance', async () => {
    const res = await prom.query('target_info');
    assert.equal(res.length, 1, JSON.stringify(res));
    const m = res[0].metric;
    assert.equal(valueOf(res[0]), 1);
    assert.equal(m.job, JOB);
    assert.equal(m.instance, INSTANCE);
    assert.equal(m.deployment_environment, 'e2e');
    assert.equal(m.host_name, 'test-host');
    // The identifying attributes are job and instance, not repeated as labels.
    assert.equal(m.service_name, undefined);
    assert.equal(m.service_instance_id, undefined);
  });

  test('sample timestamps are the data points’ times, and every name is valid', async () => {
    const ts = await prom.query(`timestamp(orders_created_total{job="${JOB}"})`);
    for (const r of ts) {
      const ms = valueOf(r) * 1000;
      assert.ok(ms >= startedAt - 1000 && ms <= Date.now() + 1000, `timestamp ${ms} outside the test window`);
    }
    const names = await prom.names();
    for (const n of names) assert.match(n, /^[a-zA-Z_:][a-zA-Z0-9_:]*$/);
    const expected = [
      'cpu_utilization_ratio',
      'http_server_request_duration_seconds_bucket',
      'http_server_request_duration_seconds_count',
      'http_server_request_duration_seconds_sum',
      'memory_used_bytes',
      'network_io_bytes_total',
      'orders_created_total',
      'queue_depth',
      'rpc_server_duration_milliseconds',
      'target_info',
    ];
    assert.deepEqual(names.filter((n) => !n.startsWith('prometheus_')).sort(), expected);
  });

  test('the collector counts the points as sent and none as failed', async () => {
    // 2 counter series + 1 + 1 + 1 + 1 + 1 histogram + 1 exponential histogram = 8 points.
    const deadline = Date.now() + 5000;
    let samples;
    for (;;) {
      samples = (await col.scrape()).samples;
      if (metricValue(samples, 'otelcol_exporter_sent_metric_points', { exporter: 'prometheus_remote_write' }) >= 8) break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(metricValue(samples, 'otelcol_exporter_sent_metric_points', { exporter: 'prometheus_remote_write' }), 8);
    assert.equal(metricValue(samples, 'otelcol_exporter_send_failed_metric_points', { exporter: 'prometheus_remote_write' }) ?? 0, 0);
  });
});

// Prometheus refuses a sample older than the newest one of its series (out of order), so an
// exporter that sends with several consumers in parallel must keep each series' samples in order
// across requests. Sixty points of one series, each in its own OTLP request, without a batch
// processor to merge them, through the default queue (5 consumers): all sixty must be stored.
describe('prometheus_remote_write keeps a series in order across parallel requests', { skip: SKIP }, () => {
  let prom;
  let col;
  const N = 60;

  before(async () => {
    prom = await startPrometheus();
    col = await startCollector({
      configText: (ports) =>
        exporterPipelineConfig(ports, {
          processors: {},
          exporters: {
            prometheus_remote_write: { endpoint: prom.writeUrl, retry_on_failure: { initial_interval: '100ms' } },
          },
          pipelines: { metrics: ['prometheus_remote_write'] },
        }),
    });
  });

  after(async () => {
    const stopped = await stopAndClean(col);
    await prom?.stop();
    assert.equal(stopped, null, 'a clean exit on SIGTERM');
  });

  test(`${N} samples sent in ${N} requests are all stored`, async () => {
    const base = Date.now() - 60000;
    const one = (i) =>
      encodeOtlp('metrics', {
        resourceMetrics: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'order-probe' } }] },
            scopeMetrics: [
              {
                scope: { name: 'probe' },
                metrics: [
                  {
                    name: 'order.probe',
                    sum: {
                      aggregationTemporality: 2,
                      isMonotonic: true,
                      dataPoints: [
                        {
                          startTimeUnixNano: String(BigInt(base - 1000) * 1000000n),
                          timeUnixNano: String(BigInt(base + i * 100) * 1000000n),
                          asInt: String(i + 1),
                        },
                      ],
                    },
                  },
                ],
              },
            ],
          },
        ],
      });
    // One after the other, so that the collector receives them in order: any disorder at
    // Prometheus is then the exporter's.
    for (let i = 0; i < N; i++) {
      const r = await httpRequest(`${col.httpUrl}/v1/metrics`, { headers: { 'content-type': 'application/x-protobuf' }, body: one(i) });
      assert.equal(r.status, 200);
    }
    const deadline = Date.now() + 10000;
    let stored = 0;
    for (;;) {
      const res = await prom.query('count_over_time(order_probe_total{job="order-probe"}[10m])');
      stored = res.length ? valueOf(res[0]) : 0;
      if (stored >= N || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const { samples } = await col.scrape();
    const failed = metricValue(samples, 'otelcol_exporter_send_failed_metric_points', { exporter: 'prometheus_remote_write' }) ?? 0;
    assert.equal(stored, N, `Prometheus stored ${stored} of ${N} samples; the exporter counted ${failed} points as failed`);
    const last = await prom.query('order_probe_total{job="order-probe"}');
    assert.equal(valueOf(last[0]), N);
  });
});
