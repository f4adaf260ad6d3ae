// Test helpers for the Todo API integration tests: a throwaway PostgreSQL cluster, the API
// process, the collector process, free ports, HTTP shortcuts. No npm dependencies.
//
// PostgreSQL refuses to run as root, so when the tests run as root the server binaries run as the
// `postgres` user through runuser, with a data directory in a temp dir that user owns. Everything
// is stopped and deleted by the returned stop() functions, which the tests call from after()
// hooks, so a failing test still cleans up.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..', '..');

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// A TCP port on 127.0.0.1 that was free a moment ago.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// The newest of the candidate files that exist, or null.
function newest(candidates) {
  let best = null;
  let bestTime = -1;
  for (const file of candidates) {
    try {
      const st = fs.statSync(file);
      if (st.isFile() && st.mtimeMs > bestTime) {
        best = file;
        bestTime = st.mtimeMs;
      }
    } catch {
      // not there
    }
  }
  return best;
}

function buildDirs() {
  return fs
    .readdirSync(repoRoot)
    .filter((d) => d === 'build' || d.startsWith('build-'))
    .map((d) => path.join(repoRoot, d));
}

// The todo-api binary: $TODO_API_BIN, else the newest build*/todo-api/todo-api of the repo.
export function findTodoApi() {
  if (process.env.TODO_API_BIN) return process.env.TODO_API_BIN;
  const bin = newest(buildDirs().map((d) => path.join(d, 'todo-api', 'todo-api')));
  if (!bin) {
    throw new Error(
      'todo-api binary not found: build it (cmake --build <dir> --target todo-api) or set TODO_API_BIN',
    );
  }
  return bin;
}

// The collector binary: $COLLECTOR_BIN, else the newest build*/collector, or null.
export function findCollector() {
  if (process.env.COLLECTOR_BIN) return process.env.COLLECTOR_BIN;
  return newest(buildDirs().map((d) => path.join(d, 'collector')));
}

// The PostgreSQL server binaries: $PG_BIN, else the newest /usr/lib/postgresql/<version>/bin.
export function findPgBin() {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base)
    ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin', 'initdb')))
    : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions.length) throw new Error('PostgreSQL server binaries not found (set PG_BIN)');
  return path.join(base, versions[0], 'bin');
}

// Runs a PostgreSQL tool, as the postgres user when we are root. Throws with its output on
// failure.
function pgRun(bin, args, opts = {}) {
  const cmd = isRoot ? 'runuser' : bin;
  const argv = isRoot ? ['-u', 'postgres', '--', bin, ...args] : args;
  const res = spawnSync(cmd, argv, { encoding: 'utf8', timeout: opts.timeout ?? 60000 });
  if (res.status !== 0) {
    throw new Error(`${path.basename(bin)} ${args.join(' ')} failed (${res.status}):\n${res.stdout}\n${res.stderr}`);
  }
  return res.stdout;
}

// Starts a throwaway cluster on a free loopback port. Returns
// { url, port, dir, stop(), start(), destroy(), psql(sql) }.
export async function startPostgres() {
  const bin = findPgBin();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-pg-'));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, 'data');
  const sock = path.join(dir, 'sock');
  fs.mkdirSync(sock);
  if (isRoot) {
    const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gw = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    const uid = Number(pw.stdout.trim());
    const gid = Number(gw.stdout.trim());
    fs.chownSync(dir, uid, gid);
    fs.chownSync(sock, uid, gid);
  }
  const port = await freePort();
  const pgCtl = path.join(bin, 'pg_ctl');
  const pg = {
    dir,
    port,
    url: `postgresql://postgres:s3cret-pw@127.0.0.1:${port}/todos`,
    running: false,
    start() {
      pgRun(pgCtl, [
        '-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '30',
        '-o', `-p ${port} -k ${sock} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off`,
        'start',
      ]);
      pg.running = true;
    },
    stop() {
      if (!pg.running) return;
      pgRun(pgCtl, ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
      pg.running = false;
    },
    psql(sql, db = 'todos') {
      return pgRun(path.join(bin, 'psql'), [
        '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', sock, '-p', String(port),
        '-U', 'postgres', '-d', db, '-c', sql,
      ]).trim();
    },
    destroy() {
      try {
        pg.stop();
      } catch {
        // best effort: the directory goes anyway
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    // A password file keeps the password off the command line; the cluster requires it on TCP,
    // so the API's masking of DATABASE_URL is exercised with a real password.
    const pwfile = path.join(dir, 'pwfile');
    fs.writeFileSync(pwfile, 's3cret-pw\n');
    if (isRoot) {
      const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
      fs.chownSync(pwfile, uid, 0);
    }
    pgRun(path.join(bin, 'initdb'), [
      '-D', data, '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--pwfile', pwfile,
      '--auth-local=trust', '--auth-host=scram-sha-256',
    ]);
    pg.start();
    pg.psql('CREATE DATABASE todos', 'postgres');
  } catch (err) {
    pg.destroy();
    throw err;
  }
  return pg;
}

// Starts the API with the given environment (merged over a clean base) and waits until it
// listens. Returns { url, port, proc, logs: [lines], stdoutLines(), stop() }.
export async function startApi(env = {}, { waitHealthy = true } = {}) {
  const bin = findTodoApi();
  const port = await freePort();
  const baseEnv = {
    PATH: process.env.PATH,
    HOST: '127.0.0.1',
    PORT: String(port),
    OTEL_SDK_DISABLED: 'true',
    DB_STARTUP_TIMEOUT: '10',
  };
  const proc = spawn(bin, ['serve'], { env: { ...baseEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const api = {
    port,
    url: `http://127.0.0.1:${port}`,
    proc,
    stdout: '',
    stderr: '',
    exited: false,
    lines() {
      return api.stdout
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => {
          try {
            return JSON.parse(l);
          } catch {
            return { unparsed: l };
          }
        });
    },
    exitCode: null,
    // Stops the API with SIGTERM and checks that it shut down cleanly: exit status 0 and no
    // sanitizer report (when the binary is a sanitizer build).
    async stop() {
      if (!api.exited) {
        const done = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
        await done;
        clearTimeout(timer);
      }
      if (/ERROR: (Address|Leak)Sanitizer|runtime error:/.test(api.stderr)) {
        throw new Error(`todo-api sanitizer report:\n${api.stderr.slice(0, 4000)}`);
      }
      if (api.exitCode !== 0) {
        throw new Error(`todo-api exited with ${api.exitCode}:\n${api.stderr.slice(0, 2000)}`);
      }
    },
  };
  proc.stdout.on('data', (d) => (api.stdout += d));
  proc.stderr.on('data', (d) => (api.stderr += d));
  proc.on('exit', (code, signal) => {
    api.exited = true;
    api.exitCode = signal ? signal : code;
  });
  const deadline = Date.now() + 20000;
  for (;;) {
    if (api.exited) {
      throw new Error(`todo-api exited during start-up:\n${api.stdout}\n${api.stderr}`);
    }
    try {
      const res = await fetch(`${api.url}/health`);
      await res.arrayBuffer();
      if (!waitHealthy || res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await api.stop().catch(() => {});
      throw new Error(`todo-api did not become ready:\n${api.stdout}\n${api.stderr}`);
    }
    await sleep(50);
  }
  return api;
}

// fetch + JSON body parsing. Returns { status, headers, body (parsed JSON or text), text }.
export async function request(base, method, urlPath, { body, headers = {}, raw } = {}) {
  const init = { method, headers: { ...headers } };
  if (raw !== undefined) {
    init.body = raw;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    if (!Object.keys(init.headers).some((h) => h.toLowerCase() === 'content-type')) {
      init.headers['Content-Type'] = 'application/json';
    }
  }
  const res = await fetch(base + urlPath, init);
  const text = await res.text();
  let parsed = text;
  if ((res.headers.get('content-type') || '').includes('json') && text) {
    parsed = JSON.parse(text);
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

// Starts the collector with a config: OTLP/HTTP receiver on a free port → batch → file exporter
// (JSON lines). Returns { endpoint, file, proc, stop(), records() } or null when no collector
// binary exists.
export async function startCollector() {
  const bin = findCollector();
  if (!bin) return null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-otelcol-'));
  const port = await freePort();
  const file = path.join(dir, 'out.jsonl');
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    config,
    `receivers:
  otlp:
    protocols:
      http:
        endpoint: "127.0.0.1:${port}"
processors:
  batch:
    timeout: 200ms
exporters:
  file:
    path: "${file}"
    format: json
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
    metrics:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
    logs:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
  telemetry:
    metrics:
      address: "127.0.0.1:0"
`,
  );
  const proc = spawn(bin, ['--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const col = {
    endpoint: `http://127.0.0.1:${port}`,
    file,
    dir,
    proc,
    output: '',
    exited: false,
    async stop() {
      if (!col.exited) {
        const done = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
        await done;
        clearTimeout(timer);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
    // Every export request written so far, parsed.
    records() {
      if (!fs.existsSync(file)) return [];
      return fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l));
    },
  };
  proc.stdout.on('data', (d) => (col.output += d));
  proc.stderr.on('data', (d) => (col.output += d));
  proc.on('exit', () => (col.exited = true));
  // Ready when the receiver accepts an (empty) export.
  const deadline = Date.now() + 15000;
  for (;;) {
    if (col.exited) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`collector exited during start-up:\n${col.output}`);
    }
    try {
      const res = await fetch(`${col.endpoint}/v1/traces`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
      });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await col.stop();
      throw new Error(`collector did not become ready:\n${col.output}`);
    }
    await sleep(50);
  }
  return col;
}

// Polls fn until it returns a truthy value or the timeout passes; returns the last value.
export async function eventually(fn, { timeout = 10000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last || Date.now() > deadline) return last;
    await sleep(interval);
  }
}
