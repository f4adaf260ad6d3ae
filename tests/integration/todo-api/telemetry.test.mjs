// The Todo API's telemetry as it arrives at the collector: the collector runs with an OTLP/HTTP
// receiver → batch → file exporter (one OTLP JSON export request per line), the API exports to
// it, and the test reads the file.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { eventually, findCollector, request, startApi, startCollector, startPostgres } from './helpers.mjs';

const collectorBin = findCollector();
const skip = collectorBin ? false : 'no collector binary (build target `collector`, or set COLLECTOR_BIN)';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_ID = 'b7ad6b7169203331';

let pg;
let col;
let api;
let ids = {};

// The value of attribute key in an OTLP JSON attribute list, as a JS scalar.
function attr(list, key) {
  const kv = (list || []).find((a) => a.key === key);
  if (!kv) return undefined;
  const v = kv.value || {};
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('boolValue' in v) return v.boolValue;
  return v;
}

function spans() {
  const out = [];
  for (const rec of col.records()) {
    for (const rs of rec.resourceSpans || []) {
      for (const ss of rs.scopeSpans || []) {
        for (const s of ss.spans || []) out.push({ ...s, resource: rs.resource, scope: ss.scope });
      }
    }
  }
  return out;
}

function metrics() {
  const out = [];
  for (const rec of col.records()) {
    for (const rm of rec.resourceMetrics || []) {
      for (const sm of rm.scopeMetrics || []) {
        for (const m of sm.metrics || []) out.push({ ...m, resource: rm.resource });
      }
    }
  }
  return out;
}

function logs() {
  const out = [];
  for (const rec of col.records()) {
    for (const rl of rec.resourceLogs || []) {
      for (const sl of rl.scopeLogs || []) {
        for (const l of sl.logRecords || []) out.push({ ...l, resource: rl.resource });
      }
    }
  }
  return out;
}

describe('telemetry at the collector', { skip }, () => {
  before(async () => {
    pg = await startPostgres();
    col = await startCollector();
    api = await startApi({
      DATABASE_URL: pg.url,
      OTEL_SDK_DISABLED: 'false',
      OTEL_EXPORTER_OTLP_ENDPOINT: col.endpoint,
      OTEL_SERVICE_NAME: 'todo-api-test',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test,team=a%2Cb,service.name=ignored',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_BLRP_SCHEDULE_DELAY: '100',
      OTEL_METRIC_EXPORT_INTERVAL: '300',
    });
    const created = await request(api.url, 'POST', '/api/v1/todos', {
      body: { title: 'traced' },
      headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`, 'User-Agent': 'telemetry-test/1.0' },
    });
    assert.equal(created.status, 201);
    ids.todo = created.body.id;
    ids.createTraceparent = created.headers.get('traceparent');
    assert.equal((await request(api.url, 'GET', `/api/v1/todos/${ids.todo}`)).status, 200);
    assert.equal((await request(api.url, 'GET', '/api/v1/todos?limit=5')).status, 200);
    assert.equal((await request(api.url, 'GET', '/api/v1/todos/00000000-0000-4000-8000-000000000000')).status, 404);
    // A 5xx: the database is stopped for one request.
    pg.stop();
    const down = await request(api.url, 'GET', '/health');
    assert.equal(down.status, 503);
    ids.downTraceparent = down.headers.get('traceparent');
    pg.start();
  });

  after(async () => {
    if (api) await api.stop();
    if (col) await col.stop();
    if (pg) pg.destroy();
  });

  test('server spans: names, kind, HTTP attributes, propagated trace id', async () => {
    const server = await eventually(() => spans().find((s) => s.name === 'POST /api/v1/todos'), { timeout: 15000 });
    assert.ok(server, `spans seen: ${spans().map((s) => s.name).join(', ')}`);
    assert.equal(server.kind, 2, 'SERVER');
    assert.equal(server.traceId, TRACE_ID, 'the incoming trace id is kept');
    assert.equal(server.parentSpanId, PARENT_ID, 'the caller is the parent');
    assert.equal(ids.createTraceparent, `00-${TRACE_ID}-${server.spanId}-01`, 'the response names this span');
    const a = server.attributes;
    assert.equal(attr(a, 'http.request.method'), 'POST');
    assert.equal(attr(a, 'http.route'), '/api/v1/todos');
    assert.equal(attr(a, 'url.path'), '/api/v1/todos');
    assert.equal(attr(a, 'url.scheme'), 'http');
    assert.equal(attr(a, 'http.response.status_code'), 201);
    assert.equal(attr(a, 'server.address'), '127.0.0.1');
    assert.equal(attr(a, 'server.port'), api.port);
    assert.equal(attr(a, 'client.address'), '127.0.0.1');
    assert.equal(attr(a, 'user_agent.original'), 'telemetry-test/1.0');
    assert.equal(attr(a, 'network.protocol.version'), '1.1');
    assert.ok(!server.status || !server.status.code, 'a 201 leaves the status unset');
    assert.ok(BigInt(server.endTimeUnixNano) >= BigInt(server.startTimeUnixNano));

    const names = new Set(spans().map((s) => s.name));
    for (const n of ['GET /api/v1/todos/{id}', 'GET /api/v1/todos', 'GET /health']) assert.ok(names.has(n), n);
    // A 404 on the id route is not an error of the server.
    const notFound = spans().find((s) => s.name === 'GET /api/v1/todos/{id}' && attr(s.attributes, 'http.response.status_code') === 404);
    assert.ok(notFound);
    assert.ok(!notFound.status || !notFound.status.code);
  });

  test('a 5xx server span has status ERROR and error.type', async () => {
    const downSpanId = ids.downTraceparent.split('-')[2];
    const span = await eventually(() => spans().find((s) => s.spanId === downSpanId), { timeout: 15000 });
    assert.ok(span);
    assert.equal(span.name, 'GET /health');
    assert.equal(attr(span.attributes, 'http.response.status_code'), 503);
    assert.equal(attr(span.attributes, 'error.type'), '503');
    assert.equal(span.status.code, 2, 'ERROR');
  });

  test('database client spans are children of the server span', async () => {
    const server = spans().find((s) => s.name === 'POST /api/v1/todos');
    const db = await eventually(() => spans().find((s) => s.parentSpanId === server.spanId), { timeout: 15000 });
    assert.ok(db, 'a child span of the POST');
    assert.equal(db.kind, 3, 'CLIENT');
    assert.equal(db.traceId, TRACE_ID);
    assert.equal(db.name, 'INSERT todos');
    assert.equal(attr(db.attributes, 'db.system.name'), 'postgresql');
    assert.equal(attr(db.attributes, 'db.system'), 'postgresql');
    assert.equal(attr(db.attributes, 'db.operation.name'), 'INSERT');
    assert.equal(attr(db.attributes, 'db.collection.name'), 'todos');
    assert.equal(attr(db.attributes, 'db.namespace'), 'todos');
    const text = attr(db.attributes, 'db.query.text');
    assert.match(text, /^INSERT INTO todos \(title, description, completed\) VALUES \(\$1, \$2, \$3\)/);
    assert.ok(!text.includes('traced'), 'parameter values are not in the query text');
    assert.ok(BigInt(db.startTimeUnixNano) >= BigInt(server.startTimeUnixNano));
    assert.ok(BigInt(db.endTimeUnixNano) <= BigInt(server.endTimeUnixNano));
    // Every request's statements hang under its own server span.
    const get = spans().find((s) => s.name === 'GET /api/v1/todos/{id}');
    const getDb = spans().find((s) => s.parentSpanId === get.spanId);
    assert.ok(getDb);
    assert.equal(getDb.traceId, get.traceId);
    assert.equal(attr(getDb.attributes, 'db.operation.name'), 'SELECT');
    assert.notEqual(get.traceId, TRACE_ID, 'a request without traceparent starts its own trace');
  });

  test('the resource carries the service name and OTEL_RESOURCE_ATTRIBUTES', () => {
    const r = spans()[0].resource.attributes;
    assert.equal(attr(r, 'service.name'), 'todo-api-test', 'OTEL_SERVICE_NAME wins');
    assert.equal(attr(r, 'deployment.environment.name'), 'test');
    assert.equal(attr(r, 'team'), 'a,b', 'values are percent-decoded');
    assert.equal(attr(r, 'telemetry.sdk.language'), 'c');
    assert.ok(attr(r, 'service.instance.id'));
  });

  test('metrics: the request duration histogram and the gauges, cumulative', async () => {
    const hist = await eventually(() => {
      const h = metrics().filter((m) => m.name === 'http.server.request.duration').at(-1);
      return h && h.histogram.dataPoints.some((p) => attr(p.attributes, 'http.route') === '/api/v1/todos' && attr(p.attributes, 'http.request.method') === 'POST') ? h : null;
    }, { timeout: 15000 });
    assert.ok(hist, `metrics seen: ${[...new Set(metrics().map((m) => m.name))].join(', ')}`);
    assert.equal(hist.unit, 's');
    assert.equal(hist.histogram.aggregationTemporality, 2, 'CUMULATIVE');
    const post = hist.histogram.dataPoints.find((p) => attr(p.attributes, 'http.route') === '/api/v1/todos' && attr(p.attributes, 'http.request.method') === 'POST');
    assert.equal(attr(post.attributes, 'http.response.status_code'), 201);
    assert.equal(Number(post.count), 1);
    assert.equal(post.bucketCounts.reduce((a, b) => a + Number(b), 0), 1);
    assert.deepEqual(post.explicitBounds.map(Number), [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]);
    assert.ok(Number(post.sum) > 0);

    const byName = (n) => metrics().filter((m) => m.name === n).at(-1);
    const active = byName('http.server.active_requests');
    assert.ok(active && active.sum && active.sum.isMonotonic !== true);
    assert.equal(active.sum.aggregationTemporality, 2);
    const pool = byName('db.client.connection.count');
    assert.ok(pool, 'pool usage');
    const states = pool.sum.dataPoints.map((p) => attr(p.attributes, 'db.client.connection.state')).sort();
    assert.deepEqual(states, ['idle', 'used']);
    const count = await eventually(() => byName('todo.count'), { timeout: 5000 });
    assert.ok(count.gauge.dataPoints.length === 1);
    assert.ok(byName('todo.completed.ratio'));
    assert.ok(byName('db.client.operation.duration'));
  });

  test('logs carry the trace and span ids of their request', async () => {
    const server = spans().find((s) => s.name === 'POST /api/v1/todos');
    const rec = await eventually(() => logs().find((l) => l.spanId === server.spanId), { timeout: 15000 });
    assert.ok(rec, `log records seen: ${logs().length}`);
    assert.equal(rec.traceId, TRACE_ID);
    assert.equal(rec.severityText, 'INFO');
    assert.equal(rec.severityNumber, 9);
    assert.equal(attr(rec.attributes, 'route'), '/api/v1/todos');
    assert.equal(attr(rec.attributes, 'status'), 201);
    assert.equal(attr(rec.attributes, 'method'), 'POST');
    assert.equal(typeof attr(rec.attributes, 'duration_ms'), 'number');
    assert.match(rec.body.stringValue, /^POST \/api\/v1\/todos 201$/);
    assert.equal(attr(rec.resource.attributes, 'service.name'), 'todo-api-test');
    // The same record on stdout, with the same ids.
    const line = api.lines().find((l) => l.span_id === server.spanId);
    assert.ok(line);
    assert.equal(line.trace_id, TRACE_ID);
    // Every request's log record correlates with one of the exported server spans.
    const serverSpanIds = new Set(spans().filter((s) => s.kind === 2).map((s) => s.spanId));
    const requestLogs = logs().filter((l) => attr(l.attributes, 'status') !== undefined);
    assert.ok(requestLogs.length >= 5);
    for (const l of requestLogs) assert.ok(serverSpanIds.has(l.spanId), `log ${l.body.stringValue}`);
  });

  test('nothing was dropped or failed', async () => {
    const text = (await request(api.url, 'GET', '/metrics')).text;
    assert.match(text, /todo_telemetry_dropped_total\{reason="queue_full",signal="spans"\} 0/);
    assert.match(text, /todo_telemetry_export_failed_total\{signal="spans"\} 0/);
    assert.match(text, /todo_telemetry_exported_total\{signal="spans"\} [1-9]/);
  });
});
