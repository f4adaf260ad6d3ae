// The memory limiter's promise (issue 2): with an exporter that never drains and a client flooding,
// the collector's RSS stays under the configured limit plus a fixed overhead, and every request it
// refuses gets a retryable status. The exporter that never drains is the file exporter writing into
// a FIFO that this test opens for reading and never reads: once the pipe's 64 KiB buffer is full,
// the batch processor's flush blocks for good and everything accepted afterwards stays held.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { httpRequest } from './lib/clients.mjs';
import { OTC_BIN, freePort } from './lib/collector.mjs';
import { spansRequest } from './lib/proto.mjs';

const LIMIT_MIB = 64;
const SPIKE_MIB = 16;
// What the process holds besides telemetry data: code, libraries, gRPC/libmicrohttpd threads and
// their stacks, buffers of requests being read, allocator slack. The README states this figure.
const OVERHEAD_MIB = 24;

function statusField(pid, field) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return m ? Number(m[1]) * 1024 : 0;
}

// Starts a collector whose only exporter writes into a FIFO nobody reads. Returns {proc, ports}.
async function startBlockedCollector(dir) {
  const fifo = path.join(dir, 'never-drains');
  execFileSync('mkfifo', [fifo]);
  // A reader must exist for the collector's open(2) of the FIFO to return.
  const fifoFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const ports = { http: await freePort(), metrics: await freePort() };
  const config = `receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${ports.http}
processors:
  memory_limiter:
    check_interval: 100ms
    limit_mib: ${LIMIT_MIB}
    spike_limit_mib: ${SPIKE_MIB}
  batch:
    timeout: 50ms
exporters:
  file:
    path: ${fifo}
    format: proto
service:
  telemetry:
    metrics:
      address: 127.0.0.1:${ports.metrics}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [file]
`;
  fs.writeFileSync(path.join(dir, 'config.yaml'), config);
  const proc = spawn(OTC_BIN, ['--config', path.join(dir, 'config.yaml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  proc.stderr.resume();
  for (let i = 0; i < 100; i++) {
    try {
      const r = await httpRequest(`http://127.0.0.1:${ports.http}/v1/traces`, {
        headers: { 'content-type': 'application/x-protobuf' },
        body: Buffer.alloc(0),
      });
      if (r.status === 200) return { proc, ports, fifoFd };
    } catch {
      // Not listening yet.
    }
    await sleep(50);
  }
  proc.kill('SIGKILL');
  throw new Error('collector did not start');
}

const running = [];
after(() => {
  for (const { proc, fifoFd, dir } of running) {
    // The blocked flush cannot finish, so a graceful stop would wait out the shutdown deadline.
    if (proc.exitCode === null) proc.kill('SIGKILL');
    fs.closeSync(fifoFd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// OTLP JSON of the same request, for the JSON flood.
function jsonBody(n) {
  const spans = [];
  for (let i = 0; i < n; i++) {
    spans.push({
      traceId: crypto.randomBytes(16).toString('hex'),
      spanId: crypto.randomBytes(8).toString('hex'),
      name: `flood-${i}`,
      kind: 1,
      startTimeUnixNano: '1700000000000000000',
      endTimeUnixNano: '1700000000001000000',
      attributes: [{ key: 'index', value: { intValue: String(i) } }],
    });
  }
  return Buffer.from(
    JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'flood' } }] },
          scopeSpans: [{ scope: { name: 'otelc-test' }, spans }],
        },
      ],
    }),
  );
}

for (const [encoding, contentType, makeBody] of [
  ['protobuf', 'application/x-protobuf', () => spansRequest('flood', 1000)],
  ['json', 'application/json', () => jsonBody(1000)],
]) {
  test(`${encoding} flood against an exporter that never drains: RSS bounded, refusals retryable`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otc-memlimit-'));
    const started = await startBlockedCollector(dir);
    running.push({ ...started, dir });
    const { proc, ports } = started;
    const body = makeBody();
    const url = `http://127.0.0.1:${ports.http}/v1/traces`;
    const statuses = new Map();
    let refusedWithRetryAfter = 0;
    let accepted = 0;
    const deadline = Date.now() + 30000;
    // Four clients in parallel, until the limiter has refused many requests (or time is up).
    async function client() {
      while (Date.now() < deadline && refusedWithRetryAfter < 200) {
        const r = await httpRequest(url, { headers: { 'content-type': contentType }, body });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status === 200) accepted++;
        if (r.status === 503 && Number(r.headers['retry-after']) > 0) refusedWithRetryAfter++;
      }
    }
    await Promise.all([client(), client(), client(), client()]);

    const peak = statusField(proc.pid, 'VmHWM');
    const acceptedBytes = accepted * body.length;
    console.log(
      `memory_limit ${encoding}: request ${(body.length / 1024).toFixed(0)} KiB, statuses ` +
        `${JSON.stringify(Object.fromEntries(statuses))}, accepted ` +
        `${(acceptedBytes / 1048576).toFixed(1)} MiB, peak RSS ${(peak / 1048576).toFixed(1)} MiB ` +
        `(limit ${LIMIT_MIB} MiB + overhead ${OVERHEAD_MIB} MiB)`,
    );

    // Only two answers are allowed: accepted, or refused with a status a client retries.
    for (const s of statuses.keys()) assert.ok(s === 200 || s === 503, `unexpected status ${s}`);
    assert.ok(refusedWithRetryAfter > 0, 'the limiter never refused: the test did not reach it');
    assert.equal(statuses.get(503), refusedWithRetryAfter, 'every 503 carries Retry-After');
    assert.ok(accepted > 0);
    assert.ok(peak < (LIMIT_MIB + OVERHEAD_MIB) * 1048576, `peak RSS ${peak} over limit + overhead`);

    // The refusals are counted where an operator sees them, and the data held stays under the
    // soft limit.
    const metrics = await (await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)).text();
    const refusedCount = Number(
      metrics.match(/^otelcol_memory_limiter_admission_refused(?:_total)? (\d+)/m)?.[1] ?? -1,
    );
    assert.ok(refusedCount >= refusedWithRetryAfter, `admission_refused ${refusedCount}`);
    const held = Number(metrics.match(/^otelcol_memory_limiter_held_bytes (\d+(?:\.\d+)?)/m)?.[1]);
    assert.ok(held <= (LIMIT_MIB - SPIKE_MIB) * 1048576, `held ${held} over the soft limit`);
    assert.equal(proc.exitCode, null, 'the collector is still running');
  });
}
