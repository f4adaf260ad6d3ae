// The Todo API's hostile-input and secrecy guarantees: the database password never reaches its
// logs (also when the connection fails), CORS is off by default and answers only the configured
// origins, and database errors (a constraint violation, a broken schema, a stopped database) come
// back as the documented JSON error without SQL or internals.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { findTodoApi, freePort, request, sleep, startApi, startPostgres } from './helpers.mjs';

const SECRET = 'Zq9-unlikely-PASSWORD-7731';
const LEAK_RE = /SELECT|INSERT|UPDATE|DELETE FROM|ALTER|constraint|violat|column|relation|todos_|no_evil|SQLSTATE|ERROR:|libpq|pq_|\.c:\d+|stack|backtrace|postgres/i;

// Runs the API with env until it exits or `ms` pass; returns its whole output.
function runApiBriefly(env, ms) {
  return new Promise((resolve) => {
    const proc = spawn(findTodoApi(), ['serve'], {
      env: { PATH: process.env.PATH, HOST: '127.0.0.1', OTEL_SDK_DISABLED: 'true', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), ms);
    proc.on('exit', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

function assertCleanError(res, status, code) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type') || '', /^application\/json/);
  assert.deepEqual(Object.keys(res.body).sort(), ['error', 'message'], res.text);
  if (code) assert.equal(res.body.error, code);
  assert.doesNotMatch(res.text, LEAK_RE);
}

describe('Todo API: secrets, CORS, errors', { timeout: 120000 }, () => {
  let pg;
  let api;
  let corsApi;

  before(async () => {
    pg = await startPostgres();
    api = await startApi({ DATABASE_URL: pg.url });
    corsApi = await startApi({
      DATABASE_URL: pg.url,
      CORS_ALLOWED_ORIGINS: 'https://app.example.com, http://localhost:3000',
      LOG_LEVEL: 'debug',
    });
  });

  after(async () => {
    if (api) await api.stop().catch(() => {});
    if (corsApi) await corsApi.stop().catch(() => {});
    if (pg) pg.destroy();
  });

  test('a wrong password, an unreachable database, keyword form: the password is never logged', async () => {
    const url = new URL(pg.url);
    const deadPort = await freePort();
    const cases = [
      `postgresql://postgres:${SECRET}@127.0.0.1:${url.port}/todos`,
      `postgresql://postgres:${SECRET}@127.0.0.1:${deadPort}/todos?connect_timeout=1`,
      `postgresql://postgres@127.0.0.1:${deadPort}/todos?password=${SECRET}`,
      `host=127.0.0.1 port=${deadPort} dbname=todos user=postgres password='${SECRET}'`,
    ];
    for (const DATABASE_URL of cases) {
      const out = await runApiBriefly({ DATABASE_URL, DB_STARTUP_TIMEOUT: '1', DB_CONNECT_TIMEOUT: '1', LOG_LEVEL: 'debug', PORT: String(await freePort()) }, 8000);
      assert.ok(out.length > 0, 'the API said something');
      assert.ok(!out.includes(SECRET), `the password leaked for ${DATABASE_URL.replace(SECRET, '<secret>')}:\n${out}`);
    }
  });

  test('CORS is off by default: no Access-Control headers, preflight refused', async () => {
    const res = await request(api.url, 'GET', '/api/v1/todos', { headers: { Origin: 'https://app.example.com' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    const pre = await request(api.url, 'OPTIONS', '/api/v1/todos', {
      headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST' },
    });
    assert.equal(pre.status, 405);
    assert.equal(pre.headers.get('access-control-allow-origin'), null);
  });

  test('CORS_ALLOWED_ORIGINS: allowed origins get the headers and a preflight answer, others nothing', async () => {
    const ok = await request(corsApi.url, 'GET', '/api/v1/todos', { headers: { Origin: 'https://app.example.com' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), 'https://app.example.com');
    assert.match(ok.headers.get('vary') || '', /Origin/);
    assert.match(ok.headers.get('access-control-expose-headers') || '', /Location/);

    const pre = await request(corsApi.url, 'OPTIONS', '/api/v1/todos/0b9c8e3e-5f4a-4f6b-9d2c-1a2b3c4d5e6f', {
      headers: {
        Origin: 'http://localhost:3000',
        'Access-Control-Request-Method': 'PATCH',
        'Access-Control-Request-Headers': 'content-type, traceparent',
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'http://localhost:3000');
    assert.match(pre.headers.get('access-control-allow-methods'), /PATCH/);
    assert.match(pre.headers.get('access-control-allow-headers'), /Content-Type/i);
    assert.ok(Number(pre.headers.get('access-control-max-age')) > 0);

    const evil = await request(corsApi.url, 'GET', '/api/v1/todos', { headers: { Origin: 'https://evil.example.net' } });
    assert.equal(evil.status, 200);
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
    for (const [origin, method, hdrs] of [
      ['https://evil.example.net', 'POST', undefined],
      ['https://app.example.com', 'PUT', undefined], // PUT is not a method of /api/v1/todos
      ['https://app.example.com', 'POST', 'x-api-key'], // a header the API does not read
      ['null', 'POST', undefined],
    ]) {
      const r = await request(corsApi.url, 'OPTIONS', '/api/v1/todos', {
        headers: { Origin: origin, 'Access-Control-Request-Method': method, ...(hdrs ? { 'Access-Control-Request-Headers': hdrs } : {}) },
      });
      assert.equal(r.status, 405, `${origin} ${method} ${hdrs}`);
      assert.equal(r.headers.get('access-control-allow-origin'), null);
    }
  });

  test('database errors are the documented JSON error, without SQL', async () => {
    // A constraint the API does not know about: the insert fails inside PostgreSQL.
    pg.psql("ALTER TABLE todos ADD CONSTRAINT no_evil CHECK (title <> 'evil')");
    const res = await request(api.url, 'POST', '/api/v1/todos', { body: { title: 'evil' } });
    assert.ok([422, 500].includes(res.status), res.text);
    assertCleanError(res, res.status);
    pg.psql('ALTER TABLE todos DROP CONSTRAINT no_evil');

    // A broken schema: every statement on the column fails.
    pg.psql('ALTER TABLE todos RENAME COLUMN description TO descr');
    const broken = await request(api.url, 'GET', '/api/v1/todos');
    assertCleanError(broken, 500, 'internal_error');
    pg.psql('ALTER TABLE todos RENAME COLUMN descr TO description');
    assert.equal((await request(api.url, 'GET', '/api/v1/todos')).status, 200);

    // The database stopped: a retryable 503, still without internals.
    pg.stop();
    try {
      const down = await request(api.url, 'POST', '/api/v1/todos', { body: { title: 'while down' } });
      assertCleanError(down, 503, 'database_unavailable');
      assert.ok(!api.stdout.includes('s3cret-pw') && !api.stderr.includes('s3cret-pw'), 'no password in the failure logs');
    } finally {
      pg.start();
    }
    for (let i = 0; i < 50; i++) {
      if ((await request(api.url, 'GET', '/health')).status === 200) break;
      await sleep(200);
    }
  });
});
