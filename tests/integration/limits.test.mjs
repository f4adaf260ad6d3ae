// Resource limits against the running collector, each tried and its result asserted: body and
// decompressed size (gzip bombs on both transports, with the collector's peak RSS read from
// /proc), concurrent HTTP connections, gRPC concurrent streams, idle and slow clients, deeply
// nested JSON, huge attribute values and huge attribute counts. After every hostile case a good
// request must still succeed.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import zlib from 'node:zlib';

import { grpc, grpcUnary, httpRequest, LOGS_EXPORT, rawGrpcClient, TRACE_EXPORT } from './lib/clients.mjs';
import { startCollector } from './lib/collector.mjs';
import { fieldMessage, fieldString, keyValue, logsRequest, traceRequest } from './lib/proto.mjs';

const PROTO = 'application/x-protobuf';
const JSON_CT = 'application/json';
const BODY_LIMIT = 8 * 1024 * 1024; // protocols.http.max_request_body_size
const GRPC_LIMIT_MIB = 8; // protocols.grpc.max_recv_msg_size_mib
const MAX_CONNECTIONS = 64; // protocols.http.max_connections
const MAX_STREAMS = 4; // protocols.grpc.max_concurrent_streams
const IDLE_TIMEOUT_S = 2; // protocols.http.idle_timeout (and read_header_timeout)

// VmRSS and VmHWM (the peak) of a process, in MiB.
function rssMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)[1]);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

// A gzip stream of `mib` MiB of zeros, made in pieces so that the test itself never holds it.
async function gzipZeros(mib) {
  const gz = zlib.createGzip({ level: 9 });
  const chunks = [];
  gz.on('data', (d) => chunks.push(d));
  const done = new Promise((resolve) => gz.on('end', resolve));
  const piece = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < mib; i++) {
    if (!gz.write(piece)) await new Promise((resolve) => gz.once('drain', resolve));
  }
  gz.end();
  await done;
  return Buffer.concat(chunks);
}

// A raw TCP connection to the HTTP port; resolves once connected. .closed resolves with the time
// the server closed it.
function rawConnect(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.setNoDelay(true);
    s.closedAt = new Promise((res) => s.on('close', () => res(Date.now())));
    s.on('error', () => {});
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function withTimeout(p, ms, value = 'timeout') {
  return Promise.race([p, sleep(ms, value)]);
}

// A log record whose one attribute is a kvlist nested `depth` levels deep, as JSON.
function deepKvlistJson(depth) {
  const open = '{"kvlistValue":{"values":[{"key":"k","value":';
  const close = '}]}}';
  const value = open.repeat(depth) + '{"stringValue":"bottom"}' + close.repeat(depth);
  return Buffer.from(
    `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"deep"},"attributes":[{"key":"deep","value":${value}}]}]}]}]}`,
  );
}

// One span with `n` attributes, as protobuf (built field by field: the helpers' object form would
// be slow for 100k keys).
function manyAttributesProto(n, name) {
  const attrs = [];
  for (let i = 0; i < n; i++) attrs.push(keyValue(9, `attr.${i}`, `v${i}`));
  return traceRequest({ spans: [{ name, rawAttributes: attrs }] });
}

function manyAttributesJson(n, name) {
  const attrs = [];
  for (let i = 0; i < n; i++) attrs.push(`{"key":"attr.${i}","value":{"intValue":"${i}"}}`);
  return Buffer.from(
    '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",' +
      `"spanId":"eee19b7ec3c1b174","name":"${name}","kind":1,"attributes":[${attrs.join(',')}]}]}]}]}`,
  );
}

describe('resource limits', { timeout: 120000 }, () => {
  let c;
  let grpcClient;
  let goodCount = 0;
  const goodNames = [];

  before(async () => {
    c = await startCollector({
      http: {
        max_request_body_size: BODY_LIMIT,
        max_connections: MAX_CONNECTIONS,
        idle_timeout: `${IDLE_TIMEOUT_S}s`,
        read_header_timeout: `${IDLE_TIMEOUT_S}s`,
      },
      grpc: { max_recv_msg_size_mib: GRPC_LIMIT_MIB, max_concurrent_streams: MAX_STREAMS },
    });
    grpcClient = rawGrpcClient(c.grpcEndpoint);
  });

  after(async () => {
    grpcClient?.close();
    if (c) await c.cleanup();
  });

  async function goodHttp(label) {
    const name = `good-${goodCount++}-${label}`;
    const res = await httpRequest(`${c.httpUrl}/v1/traces`, {
      headers: { 'content-type': PROTO },
      body: traceRequest({ spans: [{ name }] }),
    });
    assert.equal(res.status, 200, `the good request after "${label}" succeeds`);
    goodNames.push(name);
    assert.ok(c.alive(), 'the collector is still running');
  }

  test('HTTP gzip bomb: 413 from the decompressed size, RSS does not follow', async (t) => {
    const bomb = await gzipZeros(512); // 512 MiB of zeros in about 0.5 MiB
    const before = rssMiB(c.proc.pid);
    const results = await Promise.all(
      [0, 1, 2, 3].map(() =>
        httpRequest(`${c.httpUrl}/v1/traces`, {
          headers: { 'content-type': PROTO, 'content-encoding': 'gzip' },
          body: bomb,
        }),
      ),
    );
    for (const res of results) assert.equal(res.status, 413, res.body.toString('utf8').slice(0, 200));
    const afterRss = rssMiB(c.proc.pid);
    t.diagnostic(
      `4 concurrent bombs of ${(bomb.length / 1024).toFixed(0)} KiB → 512 MiB each: 413; ` +
        `RSS ${before.rss.toFixed(1)} → ${afterRss.rss.toFixed(1)} MiB, peak ${afterRss.peak.toFixed(1)} MiB`,
    );
    // Each request may hold at most the limit (8 MiB) of decompressed bytes before it is refused.
    assert.ok(afterRss.peak < before.peak + 4 * (BODY_LIMIT / 1048576) + 48, `peak RSS ${afterRss.peak} MiB`);
    await goodHttp('http gzip bomb');
  });

  test('gRPC gzip bomb: RESOURCE_EXHAUSTED, RSS bounded', async (t) => {
    const client = rawGrpcClient(c.grpcEndpoint, {
      'grpc.default_compression_algorithm': 2,
      'grpc.default_compression_level': 3,
    });
    const before = rssMiB(c.proc.pid);
    try {
      // One log record whose body is 64 MiB of 'a': a few hundred KiB once gzipped.
      const body = logsRequest('bomb', 1);
      const huge = Buffer.concat([body, fieldMessage(1, [fieldMessage(2, [fieldMessage(2, [
        fieldMessage(5, [fieldString(1, 'a'.repeat(64 * 1024 * 1024))]),
      ])])])]);
      const r = await grpcUnary(client, LOGS_EXPORT, huge, { deadlineMs: 30000 });
      assert.equal(r.code, grpc.status.RESOURCE_EXHAUSTED, `${grpc.status[r.code]}: ${r.details}`);
    } finally {
      client.close();
    }
    const afterRss = rssMiB(c.proc.pid);
    t.diagnostic(
      `64 MiB message gzipped: RESOURCE_EXHAUSTED; RSS ${before.rss.toFixed(1)} → ` +
        `${afterRss.rss.toFixed(1)} MiB, peak ${afterRss.peak.toFixed(1)} MiB`,
    );
    const r = await grpcUnary(grpcClient, TRACE_EXPORT, traceRequest({ spans: [{ name: `good-${goodCount}` }] }));
    assert.equal(r.code, grpc.status.OK, r.details);
    goodNames.push(`good-${goodCount++}`);
  });

  test('HTTP max_connections: beyond it clients wait for a slot, connected ones are served', async (t) => {
    // A keep-alive connection opened before the flood.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const keptRequest = (name) =>
      new Promise((resolve, reject) => {
        const body = traceRequest({ spans: [{ name }] });
        const req = http.request(
          `${c.httpUrl}/v1/traces`,
          { method: 'POST', agent, headers: { 'content-type': PROTO, 'content-length': body.length } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    assert.equal(await keptRequest(`good-${goodCount}`), 200);
    goodNames.push(`good-${goodCount++}`);

    const flood = [];
    for (let i = 0; i < MAX_CONNECTIONS + 40; i++) flood.push(await rawConnect(c.ports.http));
    const floodAt = Date.now();

    // The connection that was there before is still served.
    assert.equal(await keptRequest(`good-${goodCount}`), 200);
    goodNames.push(`good-${goodCount++}`);
    agent.destroy();

    // A new client gets no slot while the flood holds them all (libmicrohttpd stops accepting at
    // the limit, so the connection waits in the listen backlog), and is served once the idle
    // timeout has cut the idle ones.
    const t0 = Date.now();
    await goodHttp('during the connection flood');
    const waited = Date.now() - t0;
    t.diagnostic(`${flood.length} idle connections (limit ${MAX_CONNECTIONS}): a new client waited ${waited} ms for a slot`);
    assert.ok(waited >= (IDLE_TIMEOUT_S - 1) * 1000, `the new client waited for a free slot (${waited} ms)`);

    // Every flood connection, within the limit or queued beyond it, is cut by the idle timeout.
    const closedAll = await Promise.all(flood.map((s) => withTimeout(s.closedAt, (3 * IDLE_TIMEOUT_S + 3) * 1000, null)));
    const stillOpen = closedAll.filter((x) => x === null).length;
    const lastClose = Math.max(...closedAll.filter((x) => x !== null)) - floodAt;
    t.diagnostic(`all idle connections closed by the server within ${lastClose} ms; still open: ${stillOpen}`);
    for (const s of flood) s.destroy();
    assert.equal(stillOpen, 0, 'every idle connection was closed by idle_timeout');
    await goodHttp('connection flood');
  });

  test('slowloris: a client trickling its headers does not block others and is cut when it stalls', async (t) => {
    const slow = await rawConnect(c.ports.http);
    const head = 'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nX-Slow: ';
    let sent = 0;
    // One byte every 300 ms while the normal clients go on.
    const trickle = (async () => {
      for (const ch of head) {
        if (slow.destroyed) return;
        slow.write(ch);
        sent++;
        await sleep(300);
      }
    })();
    const latencies = [];
    for (let i = 0; i < 10; i++) {
      const t0 = Date.now();
      await goodHttp(`slowloris ${i}`);
      latencies.push(Date.now() - t0);
      await sleep(100);
    }
    t.diagnostic(`normal requests during the trickle: max latency ${Math.max(...latencies)} ms`);
    assert.ok(Math.max(...latencies) < 2000, 'normal requests are not held up by the trickler');
    await trickle;
    // Then it stalls: the server cuts it after the inactivity timeout.
    const stalledAt = Date.now();
    const closedAt = await withTimeout(slow.closedAt, (IDLE_TIMEOUT_S + 4) * 1000, null);
    assert.ok(closedAt !== null, 'the stalled slow client is disconnected');
    t.diagnostic(`header trickle of ${sent} bytes, then stalled: cut after ${closedAt - stalledAt} ms`);
    assert.ok(closedAt - stalledAt >= (IDLE_TIMEOUT_S - 1) * 1000, 'not before the timeout');
    slow.destroy();
  });

  test('slow body: a client that stalls mid-body is cut after the timeout', async (t) => {
    const slow = await rawConnect(c.ports.http);
    slow.write('POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n');
    slow.write(Buffer.alloc(10, 0x0a));
    const t0 = Date.now();
    let response = '';
    slow.on('data', (d) => (response += d.toString('latin1')));
    const closedAt = await withTimeout(slow.closedAt, (IDLE_TIMEOUT_S + 4) * 1000, null);
    assert.ok(closedAt !== null, 'the stalled body is cut');
    t.diagnostic(`stalled after 10 of 1000 body bytes: cut after ${closedAt - t0} ms ${response ? `(${response.split('\r\n')[0]})` : ''}`);
    slow.destroy();
    await goodHttp('slow body');
  });

  test('gRPC max_concurrent_streams: advertised in SETTINGS, extra calls wait and succeed', async (t) => {
    const session = http2.connect(`http://${c.grpcEndpoint}`);
    session.on('error', () => {});
    const settings = await withTimeout(
      new Promise((resolve) => session.once('remoteSettings', resolve)),
      5000,
      null,
    );
    session.close();
    assert.ok(settings, 'the server sent its SETTINGS');
    assert.equal(settings.maxConcurrentStreams, MAX_STREAMS);
    const calls = [];
    for (let i = 0; i < 5 * MAX_STREAMS; i++) {
      calls.push(grpcUnary(grpcClient, TRACE_EXPORT, traceRequest({ spans: [{ name: `stream-${i}` }] })));
    }
    const results = await Promise.all(calls);
    for (const r of results) assert.equal(r.code, grpc.status.OK, r.details);
    for (let i = 0; i < 5 * MAX_STREAMS; i++) goodNames.push(`stream-${i}`);
    t.diagnostic(`SETTINGS_MAX_CONCURRENT_STREAMS=${settings.maxConcurrentStreams}; ${calls.length} concurrent calls all OK`);
  });

  test('JSON kvlist nested 10,000 deep: 400, no crash', async () => {
    const res = await httpRequest(`${c.httpUrl}/v1/logs`, { headers: { 'content-type': JSON_CT }, body: deepKvlistJson(10000) });
    assert.equal(res.status, 400, res.body.toString('utf8').slice(0, 200));
    assert.match(JSON.parse(res.body.toString('utf8')).message, /depth|nest/i);
    await goodHttp('deep json');
  });

  test('a 5 MB attribute value under the body limit is accepted on both transports', async (t) => {
    const big = 'v'.repeat(5 * 1000 * 1000);
    const proto = traceRequest({ spans: [{ name: 'big-attr-http', attributes: { big } }] });
    let res = await httpRequest(`${c.httpUrl}/v1/traces`, { headers: { 'content-type': PROTO }, body: proto });
    assert.equal(res.status, 200);
    const json = Buffer.from(
      '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",' +
        `"spanId":"eee19b7ec3c1b174","name":"big-attr-json","attributes":[{"key":"big","value":{"stringValue":"${big}"}}]}]}]}]}`,
    );
    res = await httpRequest(`${c.httpUrl}/v1/traces`, { headers: { 'content-type': JSON_CT }, body: json });
    assert.equal(res.status, 200, res.body.toString('utf8').slice(0, 200));
    const r = await grpcUnary(grpcClient, TRACE_EXPORT, traceRequest({ spans: [{ name: 'big-attr-grpc', attributes: { big } }] }));
    assert.equal(r.code, grpc.status.OK, r.details);
    goodNames.push('big-attr-http', 'big-attr-json', 'big-attr-grpc');
    t.diagnostic(`5,000,000-byte attribute: HTTP protobuf 200, HTTP JSON 200, gRPC OK; RSS ${rssMiB(c.proc.pid).rss.toFixed(1)} MiB`);
  });

  test('100,000 attributes on one span are accepted and arrive whole', async (t) => {
    const t0 = Date.now();
    let res = await httpRequest(`${c.httpUrl}/v1/traces`, {
      headers: { 'content-type': PROTO },
      body: manyAttributesProto(100000, 'many-attrs-proto'),
    });
    assert.equal(res.status, 200);
    res = await httpRequest(`${c.httpUrl}/v1/traces`, {
      headers: { 'content-type': JSON_CT },
      body: manyAttributesJson(100000, 'many-attrs-json'),
    });
    assert.equal(res.status, 200, res.body.toString('utf8').slice(0, 200));
    goodNames.push('many-attrs-proto', 'many-attrs-json');
    t.diagnostic(`100k attributes, protobuf and JSON: 200 in ${Date.now() - t0} ms`);
  });

  test('everything accepted arrived, the rest did not; peak RSS stayed bounded', async (t) => {
    const spans = await c.waitFor(() => c.spans(), goodNames.length, { what: 'accepted spans', settleMs: 500 });
    assert.deepEqual(spans.map((s) => s.name).sort(), [...goodNames].sort());
    const many = spans.find((s) => s.name === 'many-attrs-proto');
    assert.equal(Object.keys(many.attrs).length, 100000);
    assert.equal(spans.find((s) => s.name === 'big-attr-grpc').attrs.big.length, 5 * 1000 * 1000);
    assert.equal(c.logs().length, 0, 'no log from the gzip bomb or the deep JSON was exported');
    const { rss, peak } = rssMiB(c.proc.pid);
    t.diagnostic(`collector RSS now ${rss.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB over the whole file`);
    assert.ok(peak < 400, `peak RSS ${peak} MiB`);
  });
});
