// The running process: health check, self-metrics that count exactly what was sent, JSON log lines
// on stderr, and a SIGTERM that flushes what the batch processor still holds before exiting 0.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { grpc, grpcUnary, httpRequest, LOGS_EXPORT, rawGrpcClient, TRACE_EXPORT } from './lib/clients.mjs';
import { buildConfig, Collector, metricValue, startCollector } from './lib/collector.mjs';
import { gaugeRequest, logsRequest, spansRequest } from './lib/proto.mjs';

const PROTO = 'application/x-protobuf';
const BATCH_SIZE = 50;

describe('lifecycle', { timeout: 180000 }, () => {
  const collectors = [];

  after(async () => {
    for (const c of collectors) await c.cleanup();
  });

  test('health, self-metrics, and SIGTERM flushing pending batches', async () => {
    // A batch timeout far longer than the test waits: data below send_batch_size stays pending
    // until shutdown flushes it.
    const c = await startCollector({ health: true, batch: { timeout: '10s', send_batch_size: BATCH_SIZE } });
    collectors.push(c);
    const client = rawGrpcClient(c.grpcEndpoint);
    try {
      const h = await fetch(c.healthUrl);
      assert.equal(h.status, 200);
      const hb = await h.text();
      assert.doesNotThrow(() => JSON.parse(hb), `health body is JSON: ${hb}`);

      // A full batch is sent at once (size trigger).
      let r = await grpcUnary(client, TRACE_EXPORT, spansRequest('full', BATCH_SIZE));
      assert.equal(r.code, grpc.status.OK, r.details);
      const first = await c.waitFor(() => c.spans(), BATCH_SIZE, { timeoutMs: 5000, what: 'the full batch' });
      assert.equal(first.length, BATCH_SIZE);

      // Less than a batch of each signal, which the batch processor holds.
      r = await grpcUnary(client, TRACE_EXPORT, spansRequest('pending-grpc', 7));
      assert.equal(r.code, grpc.status.OK, r.details);
      let res = await httpRequest(`${c.httpUrl}/v1/traces`, {
        headers: { 'content-type': PROTO },
        body: spansRequest('pending-http', 13),
      });
      assert.equal(res.status, 200);
      res = await httpRequest(`${c.httpUrl}/v1/metrics`, {
        headers: { 'content-type': PROTO },
        body: gaugeRequest('pending.gauge', 3),
      });
      assert.equal(res.status, 200);
      r = await grpcUnary(client, LOGS_EXPORT, logsRequest('pending-log', 4));
      assert.equal(r.code, grpc.status.OK, r.details);
      await sleep(500);
      assert.equal(c.spans().length, BATCH_SIZE, 'the pending spans are still held');
      assert.equal(c.points().length, 0, 'the pending points are still held');
      assert.equal(c.logs().length, 0, 'the pending log records are still held');

      const { text, samples, contentType } = await c.scrape();
      assert.match(contentType ?? '', /^text\/plain/);
      const grpcRecv = { receiver: 'otlp', transport: 'grpc' };
      const httpRecv = { receiver: 'otlp', transport: 'http' };
      const expect = (name, labels, want) =>
        assert.equal(metricValue(samples, name, labels), want, `${name}${JSON.stringify(labels)} in:\n${text}`);
      expect('otelcol_receiver_accepted_spans', grpcRecv, BATCH_SIZE + 7);
      expect('otelcol_receiver_accepted_spans', httpRecv, 13);
      expect('otelcol_receiver_accepted_metric_points', httpRecv, 3);
      expect('otelcol_receiver_accepted_log_records', grpcRecv, 4);
      expect('otelcol_receiver_refused_spans', grpcRecv, 0);
      expect('otelcol_receiver_refused_spans', httpRecv, 0);
      expect('otelcol_exporter_sent_spans', { exporter: 'file/traces' }, BATCH_SIZE);
      expect('otelcol_exporter_sent_log_records', { exporter: 'file/logs' }, 0);
      expect('otelcol_exporter_send_failed_spans', { exporter: 'file/traces' }, 0);
      assert.ok(metricValue(samples, 'otelcol_process_uptime') > 0, 'otelcol_process_uptime');
      assert.ok(metricValue(samples, 'otelcol_process_memory_rss') > 0, 'otelcol_process_memory_rss');
    } finally {
      client.close();
    }

    const t0 = Date.now();
    const { code, signal } = await c.stop({ signal: 'SIGTERM' });
    const elapsed = Date.now() - t0;
    assert.equal(signal, null);
    assert.equal(code, 0, c.stderrTail());
    assert.ok(elapsed < 8000, `shutdown flushed without waiting for the batch timeout (${elapsed} ms)`);

    const spans = c.spans();
    assert.equal(spans.length, BATCH_SIZE + 7 + 13);
    const names = spans.map((s) => s.name);
    for (const [prefix, n] of [
      ['full', BATCH_SIZE],
      ['pending-grpc', 7],
      ['pending-http', 13],
    ]) {
      for (let i = 0; i < n; i++) assert.ok(names.includes(`${prefix}-${i}`), `${prefix}-${i} arrived`);
    }
    const points = c.points();
    assert.equal(points.length, 3);
    assert.deepEqual(points.map((p) => Number(p.point.asInt)).sort(), [0, 1, 2]);
    assert.ok(points.every((p) => p.name === 'pending.gauge' && p.kind === 'gauge'));
    const logs = c.logs();
    assert.deepEqual(logs.map((l) => l.bodyValue).sort(), ['pending-log-0', 'pending-log-1', 'pending-log-2', 'pending-log-3']);
    assert.ok(logs.every((l) => l.severityNumber === 9 && l.severityText === 'INFO'));

    // Logs are JSON lines with a level.
    const lines = c.stderrText.split('\n').filter((l) => l.trim() !== '');
    assert.ok(lines.length > 0, 'the collector logged something');
    for (const l of lines) {
      let obj;
      assert.doesNotThrow(() => (obj = JSON.parse(l)), `stderr line is JSON: ${l}`);
      assert.ok(typeof obj.level === 'string' && obj.level.length > 0, `stderr line has a level: ${l}`);
    }
  });

  test('otelcol v0.162 telemetry readers form with _total suffixes; SIGINT also exits 0', async () => {
    const c = await startCollector({
      health: true,
      configText: (ports, dir) => {
        const text = buildConfig(ports, dir, { health: true });
        const readers =
          '      readers:\n        - pull:\n            exporter:\n              prometheus:\n' +
          `                host: 127.0.0.1\n                port: ${ports.metrics}\n` +
          '                without_type_suffix: false\n';
        const out = text.replace(`      address: 127.0.0.1:${ports.metrics}\n`, readers);
        assert.notEqual(out, text);
        return out;
      },
    });
    collectors.push(c);
    const res = await httpRequest(`${c.httpUrl}/v1/logs`, {
      headers: { 'content-type': PROTO },
      body: logsRequest('sigint', 2),
    });
    assert.equal(res.status, 200);
    await c.waitFor(() => c.logs(), 2, { what: 'log records' });
    const { samples, text } = await c.scrape();
    assert.equal(
      metricValue(samples, 'otelcol_receiver_accepted_log_records_total', { receiver: 'otlp', transport: 'http' }),
      2,
      text,
    );
    assert.equal(metricValue(samples, 'otelcol_exporter_sent_log_records_total', { exporter: 'file/logs' }), 2, text);
    const { code, signal } = await c.stop({ signal: 'SIGINT' });
    assert.equal(signal, null);
    assert.equal(code, 0, c.stderrTail());
    assert.equal(c.logs().length, 2);
  });

  test('without --config the embedded default runs: memory_limiter, batch, debug', async () => {
    const c = await startCollector({ defaultConfig: true, health: true, env: { OTC_DEBUG_VERBOSITY: 'basic' } });
    collectors.push(c);
    let res = await httpRequest(`${c.httpUrl}/v1/traces`, {
      headers: { 'content-type': PROTO },
      body: spansRequest('default', 4),
    });
    assert.equal(res.status, 200);
    const client = rawGrpcClient(c.grpcEndpoint);
    try {
      const r = await grpcUnary(client, LOGS_EXPORT, logsRequest('default-log', 6));
      assert.equal(r.code, grpc.status.OK, r.details);
    } finally {
      client.close();
    }
    res = await httpRequest(`${c.httpUrl}/v1/metrics`, {
      headers: { 'content-type': PROTO },
      body: gaugeRequest('default.gauge', 2),
    });
    assert.equal(res.status, 200);
    // The debug exporter's basic verbosity: one log line per batch with its counts.
    const deadline = Date.now() + 10000;
    const sent = async () => {
      const { samples } = await c.scrape();
      return ['spans', 'log_records', 'metric_points'].map((k) =>
        metricValue(samples, `otelcol_exporter_sent_${k}`, { exporter: 'debug' }),
      );
    };
    let counts = await sent();
    while (counts.join() !== '4,6,2' && Date.now() < deadline) {
      await sleep(100);
      counts = await sent();
    }
    assert.deepEqual(counts, [4, 6, 2], 'the debug exporter sent every item');
    const debugLines = c.stderrText
      .split('\n')
      .filter((l) => l.includes('"component":"debug"'))
      .map((l) => JSON.parse(l).msg)
      .sort();
    assert.deepEqual(debugLines, [
      'Logs {"resource logs": 1, "log records": 6}',
      'Metrics {"resource metrics": 1, "metrics": 1, "data points": 2}',
      'Traces {"resource spans": 1, "spans": 4}',
    ]);
    const { code } = await c.stop();
    assert.equal(code, 0, c.stderrTail());
  });

  test('the collector refuses to start when its port is taken', async () => {
    const c = await startCollector();
    collectors.push(c);
    // A second collector configured on the first one's gRPC port must fail to start, not hang.
    const second = new Collector({
      configText: (ports, dir) => buildConfig({ ...ports, grpc: c.ports.grpc }, dir, {}),
    });
    collectors.push(second);
    await assert.rejects(second.start(), /exited during start/);
    assert.notEqual(second.exit.code, 0);
    assert.ok(c.alive(), 'the first collector is unaffected');
  });
});
