// Interop with telemetrygen (the OpenTelemetry Go SDK's exporters): traces, metrics and logs over
// gRPC and HTTP, each run told apart by a resource attribute, with exact counts at the file
// exporter.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { startCollector, TELEMETRYGEN } from './lib/collector.mjs';

const TRACES = 12; // with --child-spans 2: three spans per trace
const CHILD_SPANS = 2;
const METRICS = 15;
const LOGS = 17;

function telemetrygen(args, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const proc = spawn(TELEMETRYGEN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`telemetrygen ${args.join(' ')} timed out:\n${out}`));
    }, timeoutMs);
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('telemetrygen → collector', { timeout: 240000, skip: !fs.existsSync(TELEMETRYGEN) && `no telemetrygen at ${TELEMETRYGEN}` }, () => {
  let c;

  before(async () => {
    c = await startCollector();
  });

  after(async () => {
    if (c) await c.cleanup();
  });

  for (const transport of ['grpc', 'http']) {
    const common = (run, endpoint) => [
      '--otlp-endpoint',
      endpoint,
      '--otlp-insecure',
      ...(transport === 'http' ? ['--otlp-http'] : []),
      '--workers',
      '1',
      '--rate',
      '0',
      '--service',
      'otelc-telemetrygen',
      '--otlp-attributes',
      `test.run="${run}"`,
      '--telemetry-attributes',
      `test.transport="${transport}"`,
    ];

    test(`traces over ${transport}`, async () => {
      const run = `tg-traces-${transport}`;
      const endpoint = transport === 'grpc' ? c.grpcEndpoint : `127.0.0.1:${c.ports.http}`;
      const r = await telemetrygen([
        'traces',
        ...common(run, endpoint),
        '--traces',
        String(TRACES),
        '--child-spans',
        String(CHILD_SPANS),
      ]);
      assert.equal(r.code, 0, r.out);
      const want = TRACES * (1 + CHILD_SPANS);
      const spans = await c.waitFor(() => c.spans((s) => s.resource['test.run'] === run), want, {
        what: `${run} spans`,
      });
      assert.equal(spans.length, want);
      const byId = new Map(spans.map((s) => [s.spanId, s]));
      const roots = spans.filter((s) => !s.parentSpanId);
      assert.equal(roots.length, TRACES);
      assert.equal(new Set(spans.map((s) => s.traceId)).size, TRACES);
      for (const s of spans) {
        assert.equal(s.resource['service.name'], 'otelc-telemetrygen');
        assert.equal(s.attrs['test.transport'], transport);
        if (s.parentSpanId) {
          const p = byId.get(s.parentSpanId);
          assert.ok(p, `the parent of ${s.name} arrived`);
          assert.equal(p.traceId, s.traceId);
        }
      }
      assert.deepEqual([...new Set(roots.map((s) => s.name))], ['lets-go']);
      // Each trace is a root "lets-go" and children "okey-dokey-0".."okey-dokey-(N-1)".
      const children = spans.filter((s) => s.parentSpanId).map((s) => s.name);
      const wantChildren = [];
      for (let t = 0; t < TRACES; t++) {
        for (let j = 0; j < CHILD_SPANS; j++) wantChildren.push(`okey-dokey-${j}`);
      }
      assert.deepEqual(children.sort(), wantChildren.sort());
    });

    test(`metrics over ${transport}`, async () => {
      const run = `tg-metrics-${transport}`;
      const endpoint = transport === 'grpc' ? c.grpcEndpoint : `127.0.0.1:${c.ports.http}`;
      const r = await telemetrygen([
        'metrics',
        ...common(run, endpoint),
        '--metrics',
        String(METRICS),
        '--metric-type',
        'Sum',
      ]);
      assert.equal(r.code, 0, r.out);
      const points = await c.waitFor(() => c.points((p) => p.resource['test.run'] === run), METRICS, {
        what: `${run} data points`,
      });
      assert.equal(points.length, METRICS);
      for (const p of points) {
        assert.equal(p.kind, 'sum');
        assert.equal(p.name, 'gen');
        assert.equal(p.attrs['test.transport'], transport);
        assert.equal(p.resource['service.name'], 'otelc-telemetrygen');
      }
    });

    test(`logs over ${transport}`, async () => {
      const run = `tg-logs-${transport}`;
      const endpoint = transport === 'grpc' ? c.grpcEndpoint : `127.0.0.1:${c.ports.http}`;
      const r = await telemetrygen([
        'logs',
        ...common(run, endpoint),
        '--logs',
        String(LOGS),
        '--body',
        `hello from ${run}`,
        '--severity-number',
        '17',
        '--severity-text',
        'Error',
      ]);
      assert.equal(r.code, 0, r.out);
      const logs = await c.waitFor(() => c.logs((l) => l.resource['test.run'] === run), LOGS, {
        what: `${run} log records`,
      });
      assert.equal(logs.length, LOGS);
      for (const l of logs) {
        assert.equal(l.bodyValue, `hello from ${run}`);
        assert.equal(l.severityNumber, 17);
        assert.equal(l.severityText, 'Error');
        assert.equal(l.attrs['test.transport'], transport);
      }
    });
  }

  test('nothing else arrived, and SIGTERM exits 0', async () => {
    assert.equal(c.spans().length, 2 * TRACES * (1 + CHILD_SPANS));
    assert.equal(c.points().length, 2 * METRICS);
    assert.equal(c.logs().length, 2 * LOGS);
    const { code, signal } = await c.stop();
    assert.equal(signal, null);
    assert.equal(code, 0, c.stderrTail());
  });
});
