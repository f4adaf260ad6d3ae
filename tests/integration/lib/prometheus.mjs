// Starts a real Prometheus server (env PROMETHEUS_BIN, default /usr/bin/prometheus, the Debian
// package) as a remote-write receiver on a free loopback port, with its TSDB in a temporary
// directory and no scrape jobs, and queries its HTTP API. stop() kills it and removes the
// directory, whatever state the test left it in.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { freePort } from './collector.mjs';

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';

export function prometheusAvailable() {
  try {
    fs.accessSync(PROMETHEUS_BIN, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.proc.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

export class Prometheus {
  constructor({ features = [] } = {}) {
    this.features = features;
    this.log = '';
    this.exit = null;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get writeUrl() {
    return `${this.url}/api/v1/write`;
  }

  async start() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otelc-prom-'));
    const config = path.join(this.dir, 'prometheus.yml');
    // No scrape jobs: every series comes through remote write.
    fs.writeFileSync(config, 'global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\nscrape_configs: []\n');
    let lastErr;
    for (let attempt = 0; attempt < 3; attempt++) {
      this.port = await freePort();
      const args = [
        `--config.file=${config}`,
        `--storage.tsdb.path=${path.join(this.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        '--web.enable-remote-write-receiver',
        '--storage.tsdb.retention.time=1d',
        '--log.level=warn',
      ];
      if (this.features.length) args.push(`--enable-feature=${this.features.join(',')}`);
      this.log = '';
      this.exit = null;
      const proc = spawn(PROMETHEUS_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: this.dir });
      this.proc = proc;
      live.add(this);
      proc.stdout.on('data', (d) => (this.log += d));
      proc.stderr.on('data', (d) => (this.log += d));
      this.exited = new Promise((resolve) => {
        proc.on('exit', (code, signal) => {
          this.exit = { code, signal };
          live.delete(this);
          resolve(this.exit);
        });
        proc.on('error', (e) => {
          this.exit = { error: e.message };
          live.delete(this);
          resolve(this.exit);
        });
      });
      try {
        await this.#waitReady();
        return this;
      } catch (e) {
        lastErr = e;
        await this.#kill();
        if (!/address already in use/i.test(this.log)) break;
      }
    }
    throw lastErr;
  }

  async #waitReady() {
    const deadline = Date.now() + 20000;
    for (;;) {
      if (this.exit) throw new Error(`prometheus exited during start (${JSON.stringify(this.exit)}):\n${this.log}`);
      try {
        const r = await fetch(`${this.url}/-/ready`);
        await r.arrayBuffer();
        if (r.status === 200) return;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) throw new Error(`prometheus not ready after 20 s:\n${this.log}`);
      await sleep(100);
    }
  }

  async #kill() {
    if (this.proc && !this.exit) {
      this.proc.kill('SIGKILL');
      await Promise.race([this.exited, sleep(5000, null, { ref: false })]);
    }
  }

  async stop() {
    await this.#kill();
    if (this.dir && !process.env.OTC_TEST_KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
  }

  async api(pathAndQuery) {
    const r = await fetch(`${this.url}${pathAndQuery}`);
    const j = await r.json();
    if (j.status !== 'success') throw new Error(`GET ${pathAndQuery}: ${r.status} ${JSON.stringify(j)}`);
    return j.data;
  }

  // An instant query: [{metric: {labels}, value: [ts, "v"]}].
  async query(expr) {
    const data = await this.api(`/api/v1/query?query=${encodeURIComponent(expr)}`);
    return data.result;
  }

  // The label sets of the series matching a selector.
  async series(match) {
    return this.api(`/api/v1/series?match[]=${encodeURIComponent(match)}&start=0`);
  }

  // Every metric name Prometheus knows.
  async names() {
    return this.api('/api/v1/label/__name__/values');
  }

  // Polls query(expr) until it returns at least `count` results.
  async waitForQuery(expr, count = 1, { timeoutMs = 20000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    let res = [];
    for (;;) {
      res = await this.query(expr);
      if (res.length >= count) return res;
      if (Date.now() > deadline) {
        const names = await this.names().catch(() => []);
        throw new Error(
          `prometheus: ${expr} has ${res.length} results, wanted ${count}, after ${timeoutMs} ms; ` +
            `metric names present: ${JSON.stringify(names)}\n${this.log.slice(-2000)}`,
        );
      }
      await sleep(200);
    }
  }
}

export async function startPrometheus(opts = {}) {
  const p = new Prometheus(opts);
  try {
    await p.start();
  } catch (e) {
    await p.stop();
    throw e;
  }
  return p;
}
