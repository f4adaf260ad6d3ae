// The Todo API's HTTP behaviour against a real PostgreSQL: every endpoint's success and error
// paths, validation edges, injection attempts, concurrency, pagination, trace context.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { eventually, freePort, request, startApi, startPostgres } from './helpers.mjs';

let pg;
let api;
const call = (method, path, opts) => request(api.url, method, path, opts);
const create = async (body) => {
  const res = await call('POST', '/api/v1/todos', { body });
  assert.equal(res.status, 201, res.text);
  return res.body;
};

before(async () => {
  pg = await startPostgres();
  // The SDK is on and points at a port where nothing listens: an absent collector must cost the
  // API nothing (exports fail in the background and are counted).
  const deadPort = await freePort();
  api = await startApi({
    DATABASE_URL: pg.url,
    OTEL_SDK_DISABLED: 'false',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${deadPort}`,
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_BLRP_SCHEDULE_DELAY: '100',
    OTEL_METRIC_EXPORT_INTERVAL: '200',
    // The concurrency tests queue for the pool; a loaded machine must not turn that into 503s.
    DB_POOL_TIMEOUT_MS: '10000',
  });
});

after(async () => {
  if (api) await api.stop();
  if (pg) pg.destroy();
});

function assertError(res, status, code) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type') || '', /^application\/json/);
  assert.equal(typeof res.body, 'object', res.text);
  assert.equal(typeof res.body.message, 'string');
  assert.ok(res.body.message.length > 0);
  if (code) assert.equal(res.body.error, code);
  // Never SQL or internals in an error.
  assert.doesNotMatch(res.text, /SELECT|INSERT|UPDATE|DELETE FROM|pq|libpq|syntax error at/i);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

describe('start-up', () => {
  test('migrations are recorded in schema_migrations, with the list index', () => {
    assert.equal(pg.psql('SELECT version FROM schema_migrations ORDER BY version'), '0001');
    const idx = pg.psql("SELECT indexdef FROM pg_indexes WHERE tablename = 'todos' AND indexname <> 'todos_pkey'");
    assert.match(idx, /\(created_at DESC, id\)/);
  });

  test('the database password never appears in the logs', () => {
    assert.ok(api.stdout.includes('****'), 'the URL is logged masked');
    assert.ok(!api.stdout.includes('s3cret-pw'));
    assert.ok(!api.stderr.includes('s3cret-pw'));
  });
});

describe('create and read', () => {
  test('POST creates a todo: 201, Location, every field', async () => {
    const res = await call('POST', '/api/v1/todos', { body: { title: 'Buy milk', description: '2 litres' } });
    assert.equal(res.status, 201);
    const t = res.body;
    assert.match(t.id, UUID_RE);
    assert.equal(res.headers.get('location'), `/api/v1/todos/${t.id}`);
    assert.equal(t.title, 'Buy milk');
    assert.equal(t.description, '2 litres');
    assert.equal(t.completed, false);
    assert.match(t.created_at, TIME_RE);
    assert.equal(t.created_at, t.updated_at);
    const got = await call('GET', `/api/v1/todos/${t.id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, t);
  });

  test('description is optional and may be null; completed may be set at creation', async () => {
    const a = await create({ title: 'no description' });
    assert.equal(a.description, null);
    const b = await create({ title: 'null description', description: null, completed: true });
    assert.equal(b.description, null);
    assert.equal(b.completed, true);
  });

  test('an upper-case UUID finds the same todo', async () => {
    const t = await create({ title: 'case' });
    const got = await call('GET', `/api/v1/todos/${t.id.toUpperCase()}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.id, t.id);
  });

  test('unknown and malformed ids are 404 with a JSON body', async () => {
    assertError(await call('GET', '/api/v1/todos/00000000-0000-4000-8000-000000000000'), 404, 'not_found');
    for (const bad of ['123', 'not-a-uuid', '00000000-0000-4000-8000-00000000000g', "1' OR '1'='1", '%00']) {
      assertError(await call('GET', `/api/v1/todos/${encodeURIComponent(bad)}`), 404, 'not_found');
    }
  });

  test('unknown paths are 404', async () => {
    assertError(await call('GET', '/api/v1/nothing'), 404, 'not_found');
    assertError(await call('GET', '/api/v1/todos/a/b'), 404, 'not_found');
    assertError(await call('GET', '/'), 404, 'not_found');
  });
});

describe('validation', () => {
  test('title of 200 characters is accepted, 201 refused', async () => {
    const ok = await create({ title: 'a'.repeat(200) });
    assert.equal(ok.title.length, 200);
    const res = await call('POST', '/api/v1/todos', { body: { title: 'a'.repeat(201) } });
    assertError(res, 422, 'validation_error');
    assert.equal(res.body.field, 'title');
  });

  test('characters, not bytes: 200 × "é" (400 bytes) accepted, 201 refused; emoji count as one', async () => {
    const ok = await create({ title: 'é'.repeat(200) });
    assert.equal(ok.title, 'é'.repeat(200));
    assertError(await call('POST', '/api/v1/todos', { body: { title: 'é'.repeat(201) } }), 422);
    const emoji = '😀'.repeat(200); // 800 bytes, 200 code points
    const e = await create({ title: emoji });
    assert.equal(e.title, emoji);
    assertError(await call('POST', '/api/v1/todos', { body: { title: '😀'.repeat(201) } }), 422);
  });

  test('title required, non-empty, not blank, a string', async () => {
    for (const body of [{}, { title: '' }, { title: '   ' }, { title: null }, { title: 5 }, { title: ['x'] }, { description: 'x' }]) {
      const res = await call('POST', '/api/v1/todos', { body });
      assertError(res, 422, 'validation_error');
    }
  });

  test('completed must be a boolean, description a string or null', async () => {
    for (const body of [{ title: 'x', completed: 'true' }, { title: 'x', completed: 1 }, { title: 'x', completed: null }, { title: 'x', description: 5 }, { title: 'x', description: {} }]) {
      assertError(await call('POST', '/api/v1/todos', { body }), 422, 'validation_error');
    }
  });

  test('unknown fields are refused; read-only fields are ignored', async () => {
    assertError(await call('POST', '/api/v1/todos', { body: { title: 'x', complete: true } }), 422);
    const t = await create({ title: 'ro', id: '00000000-0000-4000-8000-000000000000', created_at: 'x' });
    assert.notEqual(t.id, '00000000-0000-4000-8000-000000000000');
  });

  test('a body that is not an object is 422', async () => {
    for (const raw of ['[]', '"title"', '42', 'null', 'true']) {
      assertError(await call('POST', '/api/v1/todos', { raw, headers: { 'Content-Type': 'application/json' } }), 422);
    }
  });

  test('malformed JSON is 400', async () => {
    for (const raw of ['{', '{"title": }', '', '{"title":"a",}', "{'title':'a'}", '{"title":"a"} x', '{"title":"a","title":"b"}']) {
      assertError(await call('POST', '/api/v1/todos', { raw, headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json');
    }
  });

  test('invalid UTF-8 and NUL are refused, never stored', async () => {
    const before = pg.psql('SELECT count(*) FROM todos');
    const bad = Buffer.concat([Buffer.from('{"title":"a'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    const res = await call('POST', '/api/v1/todos', { raw: bad, headers: { 'Content-Type': 'application/json' } });
    assert.ok(res.status === 400 || res.status === 422, res.text);
    assertError(res, res.status);
    const overlong = Buffer.concat([Buffer.from('{"title":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]);
    const r2 = await call('POST', '/api/v1/todos', { raw: overlong, headers: { 'Content-Type': 'application/json' } });
    assert.ok(r2.status === 400 || r2.status === 422, r2.text);
    const surrogate = '{"title":"\\ud800"}';
    const r3 = await call('POST', '/api/v1/todos', { raw: surrogate, headers: { 'Content-Type': 'application/json' } });
    assert.ok(r3.status === 400 || r3.status === 422, r3.text);
    const nul = '{"title":"a\\u0000b"}';
    const r4 = await call('POST', '/api/v1/todos', { raw: nul, headers: { 'Content-Type': 'application/json' } });
    assert.ok(r4.status === 400 || r4.status === 422, r4.text);
    assert.equal(pg.psql('SELECT count(*) FROM todos'), before);
  });

  test('415 for a body that is not declared JSON', async () => {
    for (const ct of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'application/jsonx']) {
      const headers = ct ? { 'Content-Type': ct } : {};
      const init = { method: 'POST', headers, body: '{"title":"x"}' };
      if (!ct) init.body = new Blob(['{"title":"x"}']); // no type: fetch sends no Content-Type
      const res = await fetch(`${api.url}/api/v1/todos`, init);
      const text = await res.text();
      assert.equal(res.status, 415, `${ct}: ${text}`);
      assert.equal(JSON.parse(text).error, 'unsupported_media_type');
    }
    // Parameters and case are fine.
    const ok = await call('POST', '/api/v1/todos', { raw: '{"title":"ct"}', headers: { 'Content-Type': 'Application/JSON; charset=UTF-8' } });
    assert.equal(ok.status, 201);
  });

  test('a body over the limit is 413, declared or chunked', async () => {
    const big = JSON.stringify({ title: 'x', description: 'd'.repeat(70 * 1024) });
    assertError(await call('POST', '/api/v1/todos', { raw: big, headers: { 'Content-Type': 'application/json' } }), 413, 'payload_too_large');
    // Without Content-Length (a stream is sent chunked), the limit still holds.
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const res = await fetch(`${api.url}/api/v1/todos`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: stream, duplex: 'half' });
    assert.equal(res.status, 413, await res.text());
    // Just under the limit is fine.
    const fits = JSON.stringify({ title: 'x', description: 'd'.repeat(60 * 1024) });
    assert.equal((await call('POST', '/api/v1/todos', { raw: fits, headers: { 'Content-Type': 'application/json' } })).status, 201);
  });

  test('405 with Allow for a wrong method', async () => {
    let res = await call('DELETE', '/api/v1/todos');
    assertError(res, 405, 'method_not_allowed');
    assert.match(res.headers.get('allow'), /GET.*POST/);
    const t = await create({ title: 'm' });
    res = await call('POST', `/api/v1/todos/${t.id}`, { body: { title: 'x' } });
    assertError(res, 405);
    assert.match(res.headers.get('allow'), /PATCH/);
    assertError(await call('POST', '/health'), 405);
    assertError(await call('PUT', '/metrics', { body: {} }), 405);
  });
});

describe('update and delete', () => {
  test('PUT replaces every field; absent optional fields reset', async () => {
    const t = await create({ title: 'old', description: 'desc', completed: true });
    const res = await call('PUT', `/api/v1/todos/${t.id}`, { body: { title: 'new' } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.title, 'new');
    assert.equal(res.body.description, null);
    assert.equal(res.body.completed, false);
    assert.equal(res.body.created_at, t.created_at);
    assert.ok(res.body.updated_at > t.updated_at);
    assertError(await call('PUT', `/api/v1/todos/${t.id}`, { body: { completed: true } }), 422);
    assertError(await call('PUT', '/api/v1/todos/00000000-0000-4000-8000-000000000000', { body: { title: 'x' } }), 404);
    assertError(await call('PUT', '/api/v1/todos/nope', { body: { title: 'x' } }), 404);
  });

  test('PATCH changes only the given fields', async () => {
    const t = await create({ title: 'keep', description: 'keep too' });
    let res = await call('PATCH', `/api/v1/todos/${t.id}`, { body: { completed: true } });
    assert.equal(res.status, 200);
    assert.deepEqual([res.body.title, res.body.description, res.body.completed], ['keep', 'keep too', true]);
    res = await call('PATCH', `/api/v1/todos/${t.id}`, { body: { description: null } });
    assert.deepEqual([res.body.title, res.body.description, res.body.completed], ['keep', null, true]);
    res = await call('PATCH', `/api/v1/todos/${t.id}`, { body: { title: 'changed' } });
    assert.deepEqual([res.body.title, res.body.description, res.body.completed], ['changed', null, true]);
    res = await call('PATCH', `/api/v1/todos/${t.id}`, { body: {} });
    assert.equal(res.status, 200);
    assert.equal(res.body.title, 'changed');
    assertError(await call('PATCH', `/api/v1/todos/${t.id}`, { body: { title: '' } }), 422);
    assertError(await call('PATCH', `/api/v1/todos/${t.id}`, { body: { completed: 'yes' } }), 422);
    assertError(await call('PATCH', `/api/v1/todos/${t.id}`, { raw: '{', headers: { 'Content-Type': 'application/json' } }), 400);
    assertError(await call('PATCH', `/api/v1/todos/${t.id}`, { raw: '{}', headers: { 'Content-Type': 'text/plain' } }), 415);
    assertError(await call('PATCH', '/api/v1/todos/00000000-0000-4000-8000-000000000000', { body: { title: 'x' } }), 404);
  });

  test('DELETE: 204, then 404', async () => {
    const t = await create({ title: 'gone' });
    const res = await call('DELETE', `/api/v1/todos/${t.id}`);
    assert.equal(res.status, 204);
    assert.equal(res.text, '');
    assertError(await call('GET', `/api/v1/todos/${t.id}`), 404);
    assertError(await call('DELETE', `/api/v1/todos/${t.id}`), 404);
    assertError(await call('DELETE', '/api/v1/todos/zzz'), 404);
  });

  test('20 concurrent PATCHes leave a consistent todo', async () => {
    const t = await create({ title: 'race', description: 'd' });
    const patches = Array.from({ length: 20 }, (_, i) =>
      i % 2 ? { title: `title ${i}` } : { completed: i % 4 === 0 },
    );
    const results = await Promise.all(patches.map((body) => call('PATCH', `/api/v1/todos/${t.id}`, { body })));
    for (const r of results) assert.equal(r.status, 200, r.text);
    const final = (await call('GET', `/api/v1/todos/${t.id}`)).body;
    // Each field holds the value of one of the patches that set it; nothing was lost or mixed.
    assert.ok(patches.some((p) => p.title === final.title), final.title);
    assert.ok(typeof final.completed === 'boolean');
    assert.equal(final.description, 'd');
    // The last write of each field is one of the answers' values too.
    assert.ok(results.some((r) => r.body.title === final.title));
    // Concurrent PUTs of whole todos: the result is exactly one of them.
    const puts = Array.from({ length: 20 }, (_, i) => ({ title: `put ${i}`, description: `desc ${i}`, completed: i % 2 === 0 }));
    const putResults = await Promise.all(puts.map((body) => call('PUT', `/api/v1/todos/${t.id}`, { body })));
    for (const r of putResults) assert.equal(r.status, 200, r.text);
    const after = (await call('GET', `/api/v1/todos/${t.id}`)).body;
    const match = puts.find((p) => p.title === after.title);
    assert.ok(match, after.title);
    assert.equal(after.description, match.description);
    assert.equal(after.completed, match.completed);
  });
});

describe('injection', () => {
  test('SQL injection strings are stored verbatim and harm nothing', async () => {
    const nasty = [
      "'; DROP TABLE todos; --",
      "Robert'); DELETE FROM todos WHERE ('1'='1",
      '" OR 1=1 --',
      '$1 $2 \\x00 %s %n',
      "' UNION SELECT password FROM pg_shadow --",
    ];
    for (const title of nasty) {
      const t = await create({ title, description: title });
      const got = await call('GET', `/api/v1/todos/${t.id}`);
      assert.equal(got.body.title, title);
      assert.equal(got.body.description, title);
    }
    assert.equal(pg.psql("SELECT count(*) > 0 FROM todos WHERE title = '''; DROP TABLE todos; --'"), 't');
    // Query parameters go through validation, not into SQL.
    assertError(await call('GET', `/api/v1/todos?limit=${encodeURIComponent('1; DROP TABLE todos')}`), 422);
    assertError(await call('GET', `/api/v1/todos?completed=${encodeURIComponent("true' OR '1'='1")}`), 422);
    assert.equal(pg.psql("SELECT to_regclass('todos') IS NOT NULL"), 't');
  });
});

describe('list', () => {
  test('pagination, filter and newest-first order', async () => {
    pg.psql('DELETE FROM todos');
    const made = [];
    for (let i = 0; i < 7; i++) {
      made.push(await create({ title: `item ${i}`, completed: i % 3 === 0 }));
    }
    let res = await call('GET', '/api/v1/todos');
    assert.equal(res.status, 200);
    assert.equal(res.body.limit, 20);
    assert.equal(res.body.offset, 0);
    assert.deepEqual(res.body.items.map((t) => t.title), made.map((t) => t.title).reverse());
    res = await call('GET', '/api/v1/todos?limit=3');
    assert.deepEqual(res.body.items.map((t) => t.title), ['item 6', 'item 5', 'item 4']);
    res = await call('GET', '/api/v1/todos?limit=3&offset=3');
    assert.deepEqual(res.body.items.map((t) => t.title), ['item 3', 'item 2', 'item 1']);
    res = await call('GET', '/api/v1/todos?limit=3&offset=6');
    assert.deepEqual(res.body.items.map((t) => t.title), ['item 0']);
    res = await call('GET', '/api/v1/todos?offset=100');
    assert.deepEqual(res.body.items, []);
    res = await call('GET', '/api/v1/todos?completed=true');
    assert.deepEqual(res.body.items.map((t) => t.title), ['item 6', 'item 3', 'item 0']);
    res = await call('GET', '/api/v1/todos?completed=false&limit=2');
    assert.deepEqual(res.body.items.map((t) => t.title), ['item 5', 'item 4']);
    // Same created_at (one transaction): the order is still total, by id.
    pg.psql("INSERT INTO todos (title, created_at) SELECT 'same ' || g, '2000-01-01' FROM generate_series(1, 5) g");
    res = await call('GET', '/api/v1/todos?limit=100');
    const same = res.body.items.filter((t) => t.title.startsWith('same '));
    assert.deepEqual(same.map((t) => t.id), same.map((t) => t.id).sort());
    assert.equal(res.body.items.at(-1).created_at, '2000-01-01T00:00:00.000000Z');
  });

  test('invalid list parameters are 422', async () => {
    for (const q of ['limit=0', 'limit=101', 'limit=-1', 'limit=abc', 'limit=1.5', 'offset=-1', 'offset=x', 'completed=maybe', 'completed=1', 'limit=']) {
      assertError(await call('GET', `/api/v1/todos?${q}`), 422, 'validation_error');
    }
    assert.equal((await call('GET', '/api/v1/todos?limit=100&offset=0&completed=false')).status, 200);
  });
});

describe('service endpoints', () => {
  test('GET /health checks the database', async () => {
    const res = await call('GET', '/health');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { status: 'ok', database: 'ok' });
  });

  test('GET /openapi.json is an OpenAPI 3 document of every route', async () => {
    const res = await call('GET', '/openapi.json');
    assert.equal(res.status, 200);
    assert.match(res.body.openapi, /^3\./);
    assert.ok(res.body.info.title);
    for (const p of ['/api/v1/todos', '/api/v1/todos/{id}', '/health', '/metrics', '/openapi.json']) {
      assert.ok(res.body.paths[p], p);
    }
    assert.deepEqual(Object.keys(res.body.paths['/api/v1/todos/{id}']).filter((k) => k !== 'parameters').sort(), ['delete', 'get', 'patch', 'put']);
    // Every $ref resolves.
    const refs = [...res.text.matchAll(/"\$ref":\s*"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]);
    for (const r of refs) assert.ok(res.body.components.schemas[r], r);
  });

  test('GET /metrics is Prometheus text with the request metrics', async () => {
    await call('GET', '/health');
    const res = await call('GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const text = res.text;
    assert.match(text, /# TYPE http_server_request_duration_seconds histogram/);
    assert.match(text, /http_server_request_duration_seconds_bucket\{http_request_method="GET",http_response_status_code="200",http_route="\/health",le="0.005"\} \d+/);
    assert.match(text, /http_server_request_duration_seconds_count\{http_request_method="POST",http_response_status_code="201",http_route="\/api\/v1\/todos"\} \d+/);
    assert.match(text, /http_server_active_requests\{http_request_method="GET",url_scheme="http"\} 1/);
    assert.match(text, /db_client_connection_count\{db_client_connection_pool_name="todo-api",db_client_connection_state="idle"\} \d+/);
    assert.match(text, /db_client_connection_count\{db_client_connection_pool_name="todo-api",db_client_connection_state="used"\} \d+/);
    // The gauges read the database at most once a second: wait for a fresh reading.
    const count = Number(pg.psql('SELECT count(*) FROM todos'));
    const fresh = await eventually(async () => new RegExp(`^todo_count ${count}$`, 'm').test((await call('GET', '/metrics')).text), { timeout: 3000 });
    assert.ok(fresh, `todo_count ${count}`);
    assert.match(text, /^todo_completed_ratio [0-9.]+$/m);
    assert.match(text, /todo_telemetry_dropped_total\{reason="queue_full",signal="spans"\} 0/);
    // Every sample line is name{labels} value.
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+0-9.eEInfNa]+$/, line);
    }
  });

  test('HEAD answers like GET without a body', async () => {
    const res = await fetch(`${api.url}/health`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
  });
});

describe('trace context', () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const parentId = '00f067aa0ba902b7';
  const TP_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

  test('the response traceparent continues the incoming trace', async () => {
    const res = await call('GET', '/health', { headers: { traceparent: `00-${traceId}-${parentId}-01`, tracestate: 'vendor=value' } });
    assert.equal(res.status, 200);
    const m = TP_RE.exec(res.headers.get('traceparent'));
    assert.ok(m, res.headers.get('traceparent'));
    assert.equal(m[1], traceId);
    assert.notEqual(m[2], parentId, 'the server span has its own id');
    assert.equal(m[3], '01');
    assert.equal(res.headers.get('tracestate'), 'vendor=value');
  });

  test('no or invalid traceparent starts a new trace', async () => {
    const invalid = [
      undefined,
      'garbage',
      `00-${'0'.repeat(32)}-${parentId}-01`, // zero trace id
      `00-${traceId}-${'0'.repeat(16)}-01`, // zero span id
      `00-${traceId.toUpperCase()}-${parentId}-01`, // upper case
      `ff-${traceId}-${parentId}-01`, // forbidden version
      `00-${traceId}-${parentId}-01-extra`, // version 00 has no extra fields
    ];
    const seen = new Set();
    for (const tp of invalid) {
      const res = await call('GET', '/health', { headers: tp ? { traceparent: tp } : {} });
      assert.equal(res.status, 200);
      const m = TP_RE.exec(res.headers.get('traceparent'));
      assert.ok(m, String(tp));
      assert.notEqual(m[1], traceId);
      assert.notEqual(m[1], '0'.repeat(32));
      seen.add(m[1]);
    }
    assert.equal(seen.size, invalid.length, 'each request got a fresh trace id');
  });

  test('an unsampled parent is propagated, not recorded', async () => {
    const res = await call('GET', '/health', { headers: { traceparent: `00-${traceId}-${parentId}-00` } });
    const m = TP_RE.exec(res.headers.get('traceparent'));
    assert.equal(m[1], traceId);
    assert.equal(m[3], '00');
  });

  test('the request log line carries the trace and span ids', async () => {
    const res = await call('GET', '/api/v1/todos?limit=1', { headers: { traceparent: `00-${traceId}-${parentId}-01` } });
    const [, tid, sid] = TP_RE.exec(res.headers.get('traceparent'));
    const line = await eventually(() => api.lines().find((l) => l.span_id === sid));
    assert.ok(line, 'a log line with the span id');
    assert.equal(line.trace_id, tid);
    assert.equal(line.route, '/api/v1/todos');
  });

  test('an unreachable collector fails exports in the background, counted', async () => {
    const failed = await eventually(async () => {
      const text = (await call('GET', '/metrics')).text;
      const m = /todo_telemetry_export_failed_total\{signal="spans"\} (\d+)/.exec(text);
      return m && Number(m[1]) > 0;
    });
    assert.ok(failed, 'span export failures are counted');
  });
});

describe('logs', () => {
  test('one JSON line per request with the documented keys', async () => {
    const id = '00000000-0000-4000-8000-0000000000ab';
    await call('GET', `/api/v1/todos/${id}`);
    // The line is written when the response has been sent, so it may trail the response a little.
    const line = await eventually(() => api.lines().find((l) => (l.message || '').includes(id)));
    assert.ok(line, 'a request line');
    assert.ok(api.lines().every((l) => !l.unparsed), 'every stdout line is JSON');
    assert.equal(line.route, '/api/v1/todos/{id}');
    assert.equal(line.status, 404);
    assert.equal(line.level, 'warn');
    assert.equal(line.method, 'GET');
    assert.equal(typeof line.duration_ms, 'number');
    assert.match(line.timestamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.ok(line.message.includes('404'));
  });
});
