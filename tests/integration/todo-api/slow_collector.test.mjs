// A collector that accepts connections but never answers must not slow the API down: exports
// time out in the background, the bounded queues fill, and what does not fit is dropped and
// counted.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import { eventually, request, startApi, startPostgres } from './helpers.mjs';

let pg;
let api;
let hanging;
const held = [];

before(async () => {
  pg = await startPostgres();
  // Reads each export request and never responds.
  hanging = http.createServer((req, res) => {
    held.push(res);
    req.resume();
  });
  await new Promise((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  api = await startApi({
    DATABASE_URL: pg.url,
    OTEL_SDK_DISABLED: 'false',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${hanging.address().port}`,
    OTEL_EXPORTER_OTLP_TIMEOUT: '3000',
    // A loaded test machine (or a sanitizer build) may be slow; the pool must not be the limit.
    DB_POOL_TIMEOUT_MS: '10000',
    OTEL_BSP_SCHEDULE_DELAY: '50',
    OTEL_BLRP_SCHEDULE_DELAY: '50',
    OTEL_BSP_MAX_QUEUE_SIZE: '16',
    OTEL_BLRP_MAX_QUEUE_SIZE: '16',
    OTEL_METRIC_EXPORT_INTERVAL: '100',
  });
});

after(async () => {
  if (api) await api.stop();
  for (const res of held) res.destroy();
  if (hanging) hanging.close();
  if (pg) pg.destroy();
});

test('requests stay fast while exports hang; drops are counted', async () => {
  const created = await request(api.url, 'POST', '/api/v1/todos', { body: { title: 'slow collector' } });
  assert.equal(created.status, 201);
  const latencies = [];
  for (let round = 0; round < 20; round++) {
    const batch = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const t0 = performance.now();
        const res = await request(api.url, 'GET', `/api/v1/todos/${created.body.id}`);
        assert.equal(res.status, 200);
        return performance.now() - t0;
      }),
    );
    latencies.push(...batch);
  }
  latencies.sort((a, b) => a - b);
  const p99 = latencies[Math.floor(latencies.length * 0.99)];
  // Each export waits three seconds for the hanging collector; the requests must not.
  assert.ok(p99 < 1500, `p99 ${p99.toFixed(1)} ms`);
  assert.ok(held.length >= 1, 'the exporter did try the collector');
  const counters = await eventually(async () => {
    const text = (await request(api.url, 'GET', '/metrics')).text;
    const spans = /todo_telemetry_dropped_total\{reason="queue_full",signal="spans"\} (\d+)/.exec(text);
    const logs = /todo_telemetry_dropped_total\{reason="queue_full",signal="logs"\} (\d+)/.exec(text);
    return spans && Number(spans[1]) > 0 && logs && Number(logs[1]) > 0 ? { spans: Number(spans[1]), logs: Number(logs[1]) } : null;
  });
  assert.ok(counters, 'drops are counted in /metrics');
});
