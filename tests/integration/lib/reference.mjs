// Runs the reference OpenTelemetry Collector (env OTELCOL_REF, default .tools/otelcol-ref, built
// by tests/reference/build.sh) with a config the test writes, on free loopback ports, for the
// differential tests. The shape follows lib/collector.mjs's Collector: start() waits until the
// OTLP ports accept connections, cleanup() kills it and removes its temporary directory.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { freePort } from './collector.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const OTELCOL_REF = process.env.OTELCOL_REF ?? path.resolve(HERE, '../../../.tools/otelcol-ref');

export function referenceAvailable() {
  try {
    fs.accessSync(OTELCOL_REF, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

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

export class ReferenceCollector {
  // configText(ports, dir) returns the YAML; ports has grpc, http and metrics (the reference's own
  // telemetry, moved off its default 8888 so that parallel runs do not collide).
  constructor({ configText }) {
    this.configText = configText;
    this.log = '';
    this.exit = null;
  }

  get grpcEndpoint() {
    return `127.0.0.1:${this.ports.grpc}`;
  }

  get httpUrl() {
    return `http://127.0.0.1:${this.ports.http}`;
  }

  logTail(n = 40) {
    return this.log.split('\n').slice(-n).join('\n');
  }

  async start() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otelc-ref-'));
    let lastErr;
    for (let attempt = 0; attempt < 3; attempt++) {
      this.ports = { grpc: await freePort(), http: await freePort(), metrics: await freePort() };
      this.configPath = path.join(this.dir, 'config.yaml');
      fs.writeFileSync(this.configPath, this.configText(this.ports, this.dir));
      this.log = '';
      this.exit = null;
      const proc = spawn(OTELCOL_REF, ['--config', this.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
      this.proc = proc;
      live.add(this);
      proc.stdout.on('data', (d) => (this.log += d));
      proc.stderr.on('data', (d) => {
        this.log += d;
        if (process.env.OTC_TEST_VERBOSE) process.stderr.write(d);
      });
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
        await this.#waitPorts();
        return this;
      } catch (e) {
        lastErr = e;
        await this.#kill();
        if (!/address already in use/i.test(this.log)) break;
      }
    }
    throw lastErr;
  }

  async #waitPorts() {
    const deadline = Date.now() + 20000;
    for (;;) {
      if (this.exit) {
        throw new Error(`reference collector exited during start (${JSON.stringify(this.exit)}):\n${this.logTail()}`);
      }
      const ok = await Promise.all([this.ports.grpc, this.ports.http].map(canConnect));
      if (ok.every(Boolean)) return;
      if (Date.now() > deadline) throw new Error(`reference collector ports not open after 20 s:\n${this.logTail()}`);
      await sleep(50);
    }
  }

  async #kill() {
    if (this.proc && !this.exit) {
      this.proc.kill('SIGKILL');
      await Promise.race([this.exited, sleep(5000, null, { ref: false })]);
    }
  }

  // SIGTERM and wait (the reference flushes its queues on shutdown).
  async stop({ timeoutMs = 15000 } = {}) {
    if (!this.proc || this.exit) return this.exit;
    this.proc.kill('SIGTERM');
    const res = await Promise.race([this.exited, sleep(timeoutMs, null, { ref: false })]);
    if (!res) await this.#kill();
    return this.exit;
  }

  async cleanup() {
    await this.#kill();
    if (this.dir && !process.env.OTC_TEST_KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startReference(opts) {
  const c = new ReferenceCollector(opts);
  try {
    await c.start();
  } catch (e) {
    await c.cleanup();
    throw e;
  }
  return c;
}
