// Durability: the persistent sending queue (sending_queue.storage: file_storage/q) against a
// process kill, a backend outage and a graceful restart. A client that retries like an SDK (on
// 503/429 and on connection errors) sends requests with unique item ids (span names, gauge
// name/index, log bodies) over OTLP/HTTP; the collector exports with otlp_http to a sink; every
// test asserts, by id, that every item the collector acknowledged reached the sink (duplicates
// are allowed and counted, losses are not) and prints the figures.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { httpRequest } from './lib/clients.mjs';
import {
  flattenLogs,
  flattenPoints,
  flattenSpans,
  metricValue,
  startCollector,
} from './lib/collector.mjs';
import { gaugeRequest, logsRequest, spansRequest } from './lib/proto.mjs';
import { OtlpHttpSink, startSink, toYaml } from './lib/sinks.mjs';

const SIGNALS = ['traces', 'metrics', 'logs'];
const ITEMS_PER_REQUEST = 10;
const EXPORTER = 'otlp_http/sink';

// Request i of a run: its signal, its body and the ids of its items.
function makeRequest(tag, i) {
  const signal = SIGNALS[i % 3];
  const name = `${tag}_r${i}`;
  const ids = [];
  for (let j = 0; j < ITEMS_PER_REQUEST; j++) ids.push(signal === 'metrics' ? `${name}/${j}` : `${name}-${j}`);
  const body =
    signal === 'traces'
      ? spansRequest(name, ITEMS_PER_REQUEST)
      : signal === 'metrics'
        ? gaugeRequest(name, ITEMS_PER_REQUEST)
        : logsRequest(name, ITEMS_PER_REQUEST);
  return { signal, body, ids };
}

// Every item id the sink answered 2xx for, with repetitions.
function deliveredIds(sink) {
  return [
    ...flattenSpans(sink.received('traces')).map((s) => s.name),
    ...flattenPoints(sink.received('metrics')).map((p) => `${p.name}/${p.attrs.index}`),
    ...flattenLogs(sink.received('logs')).map((l) => l.bodyValue),
  ];
}

// The config: OTLP receiver → (processors) → otlp_http to the sink, with or without the
// persistent queue in storageDir.
function config(ports, { sinkUrl, storageDir, persistent = true, queue = {}, processors = {} }) {
  const sendingQueue = { num_consumers: 2, queue_size: 1000, ...queue };
  if (persistent) sendingQueue.storage = 'file_storage/q';
  const cfg = {
    receivers: {
      otlp: {
        protocols: {
          grpc: { endpoint: `127.0.0.1:${ports.grpc}` },
          http: { endpoint: `127.0.0.1:${ports.http}` },
        },
      },
    },
    processors: Object.keys(processors).length ? processors : undefined,
    exporters: {
      [EXPORTER]: {
        endpoint: sinkUrl,
        compression: 'none',
        timeout: '2s',
        sending_queue: sendingQueue,
        retry_on_failure: { initial_interval: '50ms', max_interval: '200ms', max_elapsed_time: 0 },
      },
    },
    extensions: persistent ? { 'file_storage/q': { directory: storageDir } } : undefined,
    service: {
      extensions: persistent ? ['file_storage/q'] : undefined,
      telemetry: { metrics: { address: `127.0.0.1:${ports.metrics}` } },
      pipelines: Object.fromEntries(
        SIGNALS.map((s) => [s, { receivers: ['otlp'], processors: Object.keys(processors), exporters: [EXPORTER] }]),
      ),
    },
  };
  return toYaml(cfg);
}

// A client that behaves like an SDK with retries: sends requests in order, each until it is
// acknowledged (200), retrying after 503/429 (refused) and connection errors (collector down),
// always to the collector state.col current at the time of the attempt.
class Client {
  constructor(state, tag) {
    this.state = state;
    this.tag = tag;
    this.sentItems = 0;
    this.acked = new Set();
    this.ackedRequests = 0;
    this.refused = 0;
    this.connErrors = 0;
  }

  async send(i, { deadlineMs = 60000 } = {}) {
    const req = makeRequest(this.tag, i);
    this.sentItems += req.ids.length;
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      let status = 0;
      try {
        const r = await httpRequest(`${this.state.col.httpUrl}/v1/${req.signal}`, {
          headers: { 'content-type': 'application/x-protobuf' },
          body: req.body,
        });
        status = r.status;
      } catch {
        status = 0;
      }
      if (status === 200) {
        for (const id of req.ids) this.acked.add(id);
        this.ackedRequests++;
        return;
      }
      if (status === 503 || status === 429) this.refused++;
      else if (status === 0) this.connErrors++;
      else throw new Error(`request ${i}: unexpected HTTP ${status}`);
      if (Date.now() > deadline) throw new Error(`request ${i} not acknowledged in ${deadlineMs} ms`);
      await sleep(status === 0 ? 20 : 50);
    }
  }

  async sendRange(from, to, opts) {
    for (let i = from; i < to; i++) await this.send(i, opts);
  }
}

// Waits until the sink holds every acknowledged id, then checks the accounting: no acknowledged id
// missing, nothing delivered that was never sent, and returns the figures.
async function account(sink, client, what) {
  await sink.waitFor(
    () => {
      const got = new Set(deliveredIds(sink));
      for (const id of client.acked) if (!got.has(id)) return false;
      return true;
    },
    { timeoutMs: 30000, what: `${what}: every acknowledged item` },
  );
  await sleep(300); // late duplicates count too
  const all = deliveredIds(sink);
  const unique = new Set(all);
  const missing = [...client.acked].filter((id) => !unique.has(id));
  assert.deepEqual(missing, [], `${what}: acknowledged items lost`);
  for (const id of unique) assert.ok(id.startsWith(client.tag), `${what}: unexpected item ${id}`);
  const figures = {
    sent: client.sentItems,
    acknowledged: client.acked.size,
    delivered: all.length,
    deliveredUnique: unique.size,
    duplicated: all.length - unique.size,
    refusedAttempts: client.refused,
    connectionErrors: client.connErrors,
  };
  console.log(`# ${what}: ${JSON.stringify(figures)}`);
  return figures;
}

function sumMetric(samples, name, labels) {
  return SIGNALS.reduce((n, s) => n + (metricValue(samples, name, { ...labels, data_type: s }) ?? 0), 0);
}

describe('durability', { timeout: 90000 }, () => {
  const cleanups = [];
  after(async () => {
    for (const f of cleanups.reverse()) await f();
  });

  function tmpStorage() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otelc-durability-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  async function collector(opts) {
    const col = await startCollector({ configText: (ports) => config(ports, opts) });
    cleanups.push(() => col.cleanup());
    return col;
  }

  async function sinkSlow(delayMs) {
    const sink = await startSink(OtlpHttpSink);
    cleanups.push(() => sink.close());
    sink.script([], { delayMs });
    return sink;
  }

  test('SIGKILL mid-stream: every acknowledged item is delivered after the restart', async () => {
    const storageDir = tmpStorage();
    // A slow backend (200 ms a request, two senders): the queue on disk holds a backlog when the
    // collector is killed, and some sends are in flight.
    const sink = await sinkSlow(200);
    const opts = { sinkUrl: sink.url, storageDir };
    const state = { col: await collector(opts) };
    const client = new Client(state, 'crash');
    const N = 60;
    await client.sendRange(0, 30);
    const deliveredBefore = deliveredIds(sink).length;
    state.col.kill();
    await state.col.exited;
    assert.equal(state.col.exit.signal, 'SIGKILL');
    // The client keeps sending while the collector is down (connection errors, retried)...
    const rest = client.sendRange(30, N);
    await sleep(300);
    // ...and the collector comes back with the same config and storage.
    state.col = await collector(opts);
    await rest;
    sink.script([], {}); // full speed for the rest
    const f = await account(sink, client, 'crash test');
    assert.equal(f.sent, N * ITEMS_PER_REQUEST);
    assert.equal(f.acknowledged, N * ITEMS_PER_REQUEST);
    assert.equal(f.deliveredUnique, N * ITEMS_PER_REQUEST);
    assert.ok(deliveredBefore < 30 * ITEMS_PER_REQUEST, 'the kill came with a backlog on disk');
    assert.match(state.col.stderrText, /from before the restart will be sent/);
  });

  test('outage without the persistent queue: what could not be held was refused (503), retried, not lost', async () => {
    const sink = await startSink(OtlpHttpSink);
    cleanups.push(() => sink.close());
    await sink.close(); // the backend is down
    const state = {};
    state.col = await collector({
      sinkUrl: sink.url,
      persistent: false,
      queue: { num_consumers: 1, queue_size: 5 },
    });
    const client = new Client(state, 'memq');
    const N = 30;
    const run = client.sendRange(0, N);
    // The in-memory queue holds 5 batches and the one consumer holds a sixth (retrying): the
    // seventh request and the ones after it are refused until the backend returns.
    await sleep(1500);
    const ackedWhileDown = client.ackedRequests;
    const refusedWhileDown = client.refused;
    await sink.listen();
    await run;
    const f = await account(sink, client, 'outage, in-memory queue');
    assert.equal(ackedWhileDown, 6);
    assert.ok(refusedWhileDown > 0, 'requests were refused with 503 while the queue was full');
    assert.equal(f.acknowledged, N * ITEMS_PER_REQUEST);
    assert.equal(f.deliveredUnique, N * ITEMS_PER_REQUEST);
    assert.equal(f.duplicated, 0);
  });

  test('outage with the persistent queue: everything acknowledged is delivered when the backend returns', async () => {
    const storageDir = tmpStorage();
    const sink = await startSink(OtlpHttpSink);
    cleanups.push(() => sink.close());
    await sink.close();
    const state = {};
    state.col = await collector({
      sinkUrl: sink.url,
      storageDir,
      queue: { num_consumers: 1, queue_size: 1000 },
    });
    const client = new Client(state, 'pq');
    const N = 60; // ten times what the in-memory queue above could hold
    await client.sendRange(0, N);
    assert.equal(client.refused, 0, 'nothing refused: the backlog is on disk');
    const { samples } = await state.col.scrape();
    // One batch is with the consumer (retrying), the rest wait on disk.
    assert.equal(sumMetric(samples, 'otelcol_exporter_queue_size', { exporter: EXPORTER }), N - 1);
    assert.equal(metricValue(samples, 'otelcol_exporter_queue_capacity', { exporter: EXPORTER, data_type: 'traces' }), 1000);
    await sink.listen();
    const f = await account(sink, client, 'outage, persistent queue');
    assert.equal(f.acknowledged, N * ITEMS_PER_REQUEST);
    assert.equal(f.deliveredUnique, N * ITEMS_PER_REQUEST);
    assert.equal(f.refusedAttempts, 0);
  });

  test('SIGTERM during load persists what is in flight, even in a batch processor; the restart delivers it', async () => {
    const storageDir = tmpStorage();
    const sink = await startSink(OtlpHttpSink);
    cleanups.push(() => sink.close());
    await sink.close();
    // A batch processor with a long timeout holds data in memory at the SIGTERM: its flush at
    // shutdown goes into the persistent queue.
    const opts = { sinkUrl: sink.url, storageDir, processors: { batch: { timeout: '10s', send_batch_size: 100000 } } };
    const state = { col: await collector(opts) };
    const client = new Client(state, 'term');
    const N = 30;
    await client.sendRange(0, N);
    const t0 = Date.now();
    const exit = await state.col.stop({ signal: 'SIGTERM' });
    const stopMs = Date.now() - t0;
    assert.equal(exit.code, 0);
    assert.match(state.col.stderrText, /stay in the persistent queue/);
    assert.equal(deliveredIds(sink).length, 0);
    await sink.listen();
    state.col = await collector(opts);
    const f = await account(sink, client, 'graceful restart');
    console.log(`# graceful restart: SIGTERM to exit ${stopMs} ms`);
    assert.equal(f.acknowledged, N * ITEMS_PER_REQUEST);
    assert.equal(f.deliveredUnique, N * ITEMS_PER_REQUEST);
    assert.equal(f.duplicated, 0);
  });
});
