// The database goes away and comes back while the API keeps running: requests during the outage
// get a quick 503 with a JSON body, and the API recovers by itself once the database is back.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { eventually, request, startApi, startPostgres } from './helpers.mjs';

let pg;
let api;

before(async () => {
  pg = await startPostgres();
  // The SDK is disabled here (the other suites run it enabled): the service must work either way.
  api = await startApi({ DATABASE_URL: pg.url, DB_POOL_SIZE: '4', OTEL_SDK_DISABLED: 'true' });
});

after(async () => {
  if (api) await api.stop();
  if (pg) pg.destroy();
});

test('503 while the database is down, recovery after it restarts', async () => {
  const created = await request(api.url, 'POST', '/api/v1/todos', { body: { title: 'survives' } });
  assert.equal(created.status, 201);
  const id = created.body.id;
  // Warm several pooled connections, so that the restart leaves stale ones behind.
  await Promise.all(Array.from({ length: 8 }, () => request(api.url, 'GET', '/api/v1/todos')));

  pg.stop();

  const paths = [
    ['GET', '/health'],
    ['GET', '/api/v1/todos'],
    ['GET', `/api/v1/todos/${id}`],
    ['POST', '/api/v1/todos', { body: { title: 'during outage' } }],
    ['PATCH', `/api/v1/todos/${id}`, { body: { completed: true } }],
    ['DELETE', `/api/v1/todos/${id}`],
  ];
  for (let round = 0; round < 3; round++) {
    for (const [method, path, opts] of paths) {
      const t0 = Date.now();
      const res = await request(api.url, method, path, opts);
      const elapsed = Date.now() - t0;
      assert.equal(res.status, 503, `${method} ${path}: ${res.text}`);
      assert.equal(typeof res.body.message, 'string');
      assert.equal(res.headers.get('retry-after'), '1');
      assert.ok(elapsed < 2500, `${method} ${path} took ${elapsed} ms`);
    }
  }
  const health = await request(api.url, 'GET', '/health');
  assert.equal(health.body.database, 'unreachable');
  // The service itself stays up: endpoints that need no database still answer.
  assert.equal((await request(api.url, 'GET', '/openapi.json')).status, 200);
  assert.equal((await request(api.url, 'GET', '/metrics')).status, 200);
  assert.equal((await request(api.url, 'GET', '/api/v1/todos/not-a-uuid')).status, 404);
  assert.equal((await request(api.url, 'POST', '/api/v1/todos', { body: { title: '' } })).status, 422);

  pg.start();

  const healthy = await eventually(async () => (await request(api.url, 'GET', '/health')).status === 200, { timeout: 10000 });
  assert.ok(healthy, 'the API reconnected by itself');
  // Every pooled connection works again, under concurrency.
  const results = await Promise.all(Array.from({ length: 12 }, () => request(api.url, 'GET', `/api/v1/todos/${id}`)));
  for (const r of results) assert.equal(r.status, 200, r.text);
  assert.equal(results[0].body.title, 'survives');
  const again = await request(api.url, 'POST', '/api/v1/todos', { body: { title: 'after outage' } });
  assert.equal(again.status, 201);
  // Nothing written during the outage reached the table.
  assert.equal(pg.psql("SELECT count(*) FROM todos WHERE title = 'during outage'"), '0');
  assert.equal(api.exited, false);
  // The failure was logged once in a while, not for every request, and without the password.
  const failures = api.lines().filter((l) => /database connection failed/.test(l.message || ''));
  assert.ok(failures.length >= 1 && failures.length <= 5, `${failures.length} failure lines`);
  assert.ok(!api.stdout.includes('s3cret-pw'));
});

test('start-up waits for a database that comes up late', async () => {
  pg.stop();
  const late = startApi({ DATABASE_URL: pg.url, OTEL_SDK_DISABLED: 'true', DB_STARTUP_TIMEOUT: '20' });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  pg.start();
  const api2 = await late;
  try {
    assert.equal((await request(api2.url, 'GET', '/health')).status, 200);
    // Migrations are idempotent: a second instance applied none.
    assert.ok(api2.lines().some((l) => /0 migrations applied/.test(l.message || '')));
    assert.equal(pg.psql('SELECT count(*) FROM schema_migrations'), '1');
  } finally {
    await api2.stop();
  }
});
