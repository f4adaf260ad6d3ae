// Starts the real collector binary (env OTC_BIN) for one test file: free loopback ports, a config
// written to a temporary directory (OTLP gRPC + HTTP → memory_limiter → batch → one file exporter
// per signal, JSON lines), self-metrics and optionally the health check. The file exporter is how a
// test sees exactly what arrived: one OTLP JSON Export request per line.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const OTC_BIN = process.env.OTC_BIN ?? path.resolve(HERE, '../../../build/collector');
export const TELEMETRYGEN =
  process.env.TELEMETRYGEN ?? path.resolve(HERE, '../../../.tools/telemetrygen');

// Every collector started in this process, so that an unexpected exit of the test runner does not
// leave one behind.
const live = new Set();
process.on('exit', () => {
  for (const c of live) {
    try {
      c.proc.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

// A port that was free a moment ago on 127.0.0.1 (the kernel picks it; the collector binds it
// right after, and a start that loses the race is retried with new ports).
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

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

// The config text. opts: batch (object of batch keys), memoryLimiter (false to leave it out),
// health (bool), grpc / http (extra receiver keys), debug (add a debug exporter too).
export function buildConfig(ports, dir, opts = {}) {
  const batch = { timeout: '100ms', ...(opts.batch ?? {}) };
  const grpcExtra = opts.grpc ?? {};
  const httpExtra = opts.http ?? {};
  const kv = (obj, indent) =>
    Object.entries(obj)
      .map(([k, v]) => `${' '.repeat(indent)}${k}: ${v}\n`)
      .join('');
  const processors = [];
  let text = '';
  text += 'receivers:\n  otlp:\n    protocols:\n';
  text += `      grpc:\n        endpoint: 127.0.0.1:${ports.grpc}\n${kv(grpcExtra, 8)}`;
  text += `      http:\n        endpoint: 127.0.0.1:${ports.http}\n${kv(httpExtra, 8)}`;
  text += 'processors:\n';
  if (opts.memoryLimiter !== false) {
    text += '  memory_limiter:\n    check_interval: 1s\n    limit_mib: 1024\n    spike_limit_mib: 256\n';
    processors.push('memory_limiter');
  }
  text += `  batch:\n${kv(batch, 4)}`;
  processors.push('batch');
  text += 'exporters:\n';
  for (const sig of ['traces', 'metrics', 'logs']) {
    text += `  file/${sig}:\n    path: ${path.join(dir, `${sig}.jsonl`)}\n    format: json\n`;
  }
  if (opts.debug) text += '  debug:\n    verbosity: basic\n';
  if (opts.health) text += `extensions:\n  health_check:\n    endpoint: 127.0.0.1:${ports.health}\n`;
  text += 'service:\n';
  if (opts.health) text += '  extensions: [health_check]\n';
  text += `  telemetry:\n    metrics:\n      address: 127.0.0.1:${ports.metrics}\n`;
  text += '  pipelines:\n';
  for (const sig of ['traces', 'metrics', 'logs']) {
    const exporters = [`file/${sig}`, ...(opts.debug ? ['debug'] : [])];
    text += `    ${sig}:\n      receivers: [otlp]\n      processors: [${processors.join(', ')}]\n`;
    text += `      exporters: [${exporters.join(', ')}]\n`;
  }
  return text;
}

// Runs `collector ARGS...` to completion (for validate, --version...). Returns {code, stdout,
// stderr}.
export function runCollectorCommand(args, { timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(OTC_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`collector ${args.join(' ')} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// Converts an OTLP JSON AnyValue to a plain JS value (int64 as Number, bytes as base64 string).
export function fromAnyValue(v) {
  if (v == null) return undefined;
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue);
  if ('bytesValue' in v) return v.bytesValue;
  if ('arrayValue' in v) return (v.arrayValue.values ?? []).map(fromAnyValue);
  if ('kvlistValue' in v) return attrsToObject(v.kvlistValue.values);
  return undefined; // an empty AnyValue
}

export function attrsToObject(list) {
  const out = {};
  for (const kv of list ?? []) out[kv.key] = fromAnyValue(kv.value);
  return out;
}

// Flattens the lines of a traces file into spans with their resource and scope.
export function flattenSpans(requests) {
  const out = [];
  for (const req of requests) {
    for (const rs of req.resourceSpans ?? []) {
      const resource = attrsToObject(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const span of ss.spans ?? []) {
          out.push({
            ...span,
            attrs: attrsToObject(span.attributes),
            resource,
            scope: ss.scope ?? {},
          });
        }
      }
    }
  }
  return out;
}

const POINT_KINDS = ['gauge', 'sum', 'histogram', 'exponentialHistogram', 'summary'];

// Flattens a metrics file into data points: {metric, kind, point, attrs, resource, scope}.
export function flattenPoints(requests) {
  const out = [];
  for (const req of requests) {
    for (const rm of req.resourceMetrics ?? []) {
      const resource = attrsToObject(rm.resource?.attributes);
      for (const sm of rm.scopeMetrics ?? []) {
        for (const metric of sm.metrics ?? []) {
          for (const kind of POINT_KINDS) {
            if (!metric[kind]) continue;
            for (const point of metric[kind].dataPoints ?? []) {
              out.push({
                metric,
                name: metric.name,
                kind,
                point,
                attrs: attrsToObject(point.attributes),
                resource,
                scope: sm.scope ?? {},
              });
            }
          }
        }
      }
    }
  }
  return out;
}

export function flattenLogs(requests) {
  const out = [];
  for (const req of requests) {
    for (const rl of req.resourceLogs ?? []) {
      const resource = attrsToObject(rl.resource?.attributes);
      for (const sl of rl.scopeLogs ?? []) {
        for (const rec of sl.logRecords ?? []) {
          out.push({
            ...rec,
            attrs: attrsToObject(rec.attributes),
            bodyValue: fromAnyValue(rec.body),
            resource,
            scope: sl.scope ?? {},
          });
        }
      }
    }
  }
  return out;
}

// Parses the Prometheus text format into [{name, labels, value}].
export function parsePrometheus(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let lm;
      while ((lm = re.exec(m[3]))) labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

// The value of the series with exactly this name whose labels include `labels`; undefined if none.
export function metricValue(samples, name, labels = {}) {
  const hits = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (hits.length === 0) return undefined;
  return hits.reduce((a, s) => a + s.value, 0);
}

export class Collector {
  constructor(opts) {
    this.opts = opts;
    this.stderrText = '';
    this.stdoutText = '';
    this.exit = null; // {code, signal} once exited
  }

  get grpcEndpoint() {
    return `127.0.0.1:${this.ports.grpc}`;
  }

  get httpUrl() {
    return `http://127.0.0.1:${this.ports.http}`;
  }

  get metricsUrl() {
    return `http://127.0.0.1:${this.ports.metrics}/metrics`;
  }

  get healthUrl() {
    return `http://127.0.0.1:${this.ports.health}/`;
  }

  filePath(signal) {
    return path.join(this.dir, `${signal}.jsonl`);
  }

  stderrTail(n = 40) {
    return this.stderrText.split('\n').slice(-n).join('\n');
  }

  async start() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otelc-it-'));
    let lastErr;
    for (let attempt = 0; attempt < 3; attempt++) {
      this.ports = {
        grpc: await freePort(),
        http: await freePort(),
        metrics: await freePort(),
        health: await freePort(),
      };
      if (this.opts.defaultConfig) {
        // The embedded default config, moved to free loopback ports by its environment variables.
        this.configPath = null;
      } else {
        this.configText = this.opts.configText
          ? this.opts.configText(this.ports, this.dir)
          : buildConfig(this.ports, this.dir, this.opts);
        this.configPath = path.join(this.dir, 'config.yaml');
        fs.writeFileSync(this.configPath, this.configText);
      }
      try {
        await this.#spawnAndWait();
        return this;
      } catch (e) {
        lastErr = e;
        this.kill();
        // Only a lost port race is worth another try.
        if (!/address already in use|EADDRINUSE|bind/i.test(this.stderrText)) break;
      }
    }
    throw lastErr;
  }

  async #spawnAndWait() {
    this.stderrText = '';
    this.exit = null;
    const args = this.configPath ? ['--config', this.configPath] : [];
    const env = { ...process.env, ...(this.opts.env ?? {}) };
    if (this.opts.defaultConfig) {
      env.OTC_GRPC_ENDPOINT = `127.0.0.1:${this.ports.grpc}`;
      env.OTC_HTTP_ENDPOINT = `127.0.0.1:${this.ports.http}`;
      env.OTC_METRICS_ENDPOINT = `127.0.0.1:${this.ports.metrics}`;
      env.OTC_HEALTH_ENDPOINT = `127.0.0.1:${this.ports.health}`;
    }
    const proc = spawn(OTC_BIN, [...args, ...(this.opts.args ?? [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    this.proc = proc;
    live.add(this);
    proc.stdout.on('data', (d) => (this.stdoutText += d));
    proc.stderr.on('data', (d) => {
      this.stderrText += d;
      if (process.env.OTC_TEST_VERBOSE) process.stderr.write(d);
    });
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        live.delete(this);
        resolve(this.exit);
      });
      proc.on('error', (e) => {
        this.exit = { code: null, signal: null, error: e };
        live.delete(this);
        resolve(this.exit);
      });
    });
    const deadline = Date.now() + 15000;
    const want = [this.ports.grpc, this.ports.http, this.ports.metrics];
    if (this.opts.health) want.push(this.ports.health);
    for (;;) {
      if (this.exit) {
        throw new Error(
          `collector exited during start (${JSON.stringify(this.exit)}):\n${this.stderrTail()}`,
        );
      }
      const ok = await Promise.all(want.map(canConnect));
      if (ok.every(Boolean)) break;
      if (Date.now() > deadline) {
        throw new Error(`collector ports ${want} not all open after 15 s:\n${this.stderrTail()}`);
      }
      await sleep(50);
    }
    if (this.opts.health) {
      for (;;) {
        try {
          const r = await fetch(this.healthUrl);
          await r.arrayBuffer();
          if (r.status === 200) break;
        } catch {
          // Not serving yet.
        }
        if (Date.now() > deadline) throw new Error(`health check never became 200:\n${this.stderrTail()}`);
        await sleep(50);
      }
    }
  }

  alive() {
    return this.proc && !this.exit;
  }

  // The parsed JSON lines of one signal's file (only complete lines: the exporter may be writing).
  read(signal) {
    let text;
    try {
      text = fs.readFileSync(this.filePath(signal), 'utf8');
    } catch (e) {
      if (e.code === 'ENOENT') return [];
      throw e;
    }
    const end = text.lastIndexOf('\n');
    if (end < 0) return [];
    return text
      .slice(0, end)
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l, i) => {
        try {
          return JSON.parse(l);
        } catch (e) {
          throw new Error(`${signal}.jsonl line ${i + 1} is not JSON (${e.message}): ${l.slice(0, 200)}`);
        }
      });
  }

  spans(filter = () => true) {
    return flattenSpans(this.read('traces')).filter(filter);
  }

  points(filter = () => true) {
    return flattenPoints(this.read('metrics')).filter(filter);
  }

  logs(filter = () => true) {
    return flattenLogs(this.read('logs')).filter(filter);
  }

  // Polls fn() until it returns at least `count` items (or fn is satisfied by a predicate), then
  // waits `settleMs` more and returns the final list, so that a surplus is caught too.
  async waitFor(fn, count, { timeoutMs = 15000, settleMs = 300, what = 'items' } = {}) {
    const deadline = Date.now() + timeoutMs;
    let items = fn();
    while (items.length < count) {
      if (!this.alive()) {
        throw new Error(`collector died (${JSON.stringify(this.exit)}) waiting for ${what}:\n${this.stderrTail()}`);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${count} ${what}, have ${items.length}:\n${this.stderrTail()}`,
        );
      }
      await sleep(50);
      items = fn();
    }
    if (settleMs > 0) {
      await sleep(settleMs);
      items = fn();
    }
    return items;
  }

  async scrape() {
    const r = await fetch(this.metricsUrl);
    const text = await r.text();
    if (r.status !== 200) throw new Error(`GET ${this.metricsUrl}: ${r.status} ${text}`);
    return { text, samples: parsePrometheus(text), contentType: r.headers.get('content-type') };
  }

  // SIGTERM (or another signal) and wait for the exit; returns {code, signal}.
  async stop({ signal = 'SIGTERM', timeoutMs = 20000 } = {}) {
    if (!this.proc || this.exit) return this.exit;
    this.proc.kill(signal);
    // Unreferenced, so that the pending timer does not keep the test process alive after the exit.
    const timer = sleep(timeoutMs, null, { ref: false });
    const res = await Promise.race([this.exited, timer]);
    if (!res) {
      this.kill();
      throw new Error(`collector did not exit within ${timeoutMs} ms of ${signal}:\n${this.stderrTail()}`);
    }
    return res;
  }

  kill() {
    if (this.proc && !this.exit) {
      try {
        this.proc.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }

  // For `after` hooks: kills what is left and removes the temporary directory.
  async cleanup() {
    if (this.proc && !this.exit) {
      this.kill();
      await Promise.race([this.exited, sleep(5000, null, { ref: false })]);
    }
    if (this.dir && !process.env.OTC_TEST_KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startCollector(opts = {}) {
  const c = new Collector(opts);
  try {
    await c.start();
  } catch (e) {
    await c.cleanup();
    throw e;
  }
  return c;
}
