// Bad input over both transports: each bad request gets the documented status, and the collector
// keeps serving the next good request, which arrives at the file exporter exactly once. Also the
// command line: validate names file:line for config errors, --version, --help, components.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';

import {
  grpc,
  grpcUnary,
  httpRequest,
  LOGS_EXPORT,
  METRICS_EXPORT,
  rawGrpcClient,
  TRACE_EXPORT,
} from './lib/clients.mjs';
import { buildConfig, runCollectorCommand, startCollector } from './lib/collector.mjs';
import { decodeFields, decodeStatus, deepAnyValue, fieldMessage, fieldString, spansRequest, traceRequest } from './lib/proto.mjs';

const PROTO = 'application/x-protobuf';
const JSON_CT = 'application/json';
const BODY_LIMIT = 1024 * 1024; // receivers.otlp.protocols.http.max_request_body_size
const GRPC_LIMIT_MIB = 1; // receivers.otlp.protocols.grpc.max_recv_msg_size_mib

const GARBAGE = Buffer.alloc(64, 0xff); // field 2^60ish with wire type 7: never valid protobuf
const ONE_SPAN = spansRequest('template', 3);
const TRUNCATED = ONE_SPAN.subarray(0, ONE_SPAN.length - 5);

// A span whose one attribute nests array_value 10,000 levels deep: about 60 KB, far under every
// size limit, but enough to overflow a decoder that recurses without a bound.
function deepProto(depth = 10000) {
  const rawAttr = fieldMessage(9, [fieldString(1, 'deep'), fieldMessage(2, [deepAnyValue(depth)])]);
  return traceRequest({ spans: [{ name: 'deep', rawAttributes: [rawAttr] }] });
}

function deepJson(depth = 10000) {
  const value = '{"arrayValue":{"values":['.repeat(depth) + '{"stringValue":"bottom"}' + ']}}'.repeat(depth);
  return Buffer.from(
    '{"resourceSpans":[{"resource":{},"scopeSpans":[{"scope":{},"spans":[{' +
      '"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"deep",' +
      `"kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{"key":"deep","value":${value}}]}]}]}]}`,
  );
}

function jsonSpans(name) {
  return Buffer.from(
    JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'otelc-bad-input' } }] },
          scopeSpans: [
            {
              scope: { name: 'otelc-test' },
              spans: [
                {
                  traceId: '5b8efff798038103d269b633813fc60c',
                  spanId: Math.floor(Math.random() * 2 ** 48)
                    .toString(16)
                    .padStart(16, '1'),
                  name,
                  kind: 2,
                  startTimeUnixNano: '1700000000000000000',
                  endTimeUnixNano: '1700000000001000000',
                },
              ],
            },
          ],
        },
      ],
    }),
  );
}

// A protobuf request of `bytes` total size: one span with a large string attribute.
function bigProto(bytes, name = 'big-refused') {
  return traceRequest({ spans: [{ name, attributes: { filler: 'x'.repeat(bytes) } }] });
}

// Checks the body of an error response: a google.rpc.Status in the request's encoding.
function assertStatusBody(res, ct) {
  assert.equal(res.headers['content-type'], ct, 'the response has the request Content-Type');
  if (ct === PROTO) {
    const st = decodeStatus(res.body);
    assert.ok(st.message.length > 0, 'the Status carries a message');
    assert.equal(st.code, grpc.status.INVALID_ARGUMENT);
  } else {
    const st = JSON.parse(res.body.toString('utf8'));
    assert.ok(typeof st.message === 'string' && st.message.length > 0, `Status message in ${res.body}`);
    assert.equal(st.code, grpc.status.INVALID_ARGUMENT);
  }
}

// Export*ServiceResponse: only partial_success (field 1) is defined; a good request has none.
function assertCleanResponse(body) {
  for (const f of decodeFields(body)) assert.notEqual(f.field, 1, 'no partial_success for a good request');
}

describe('bad input', { timeout: 180000 }, () => {
  let c;
  let grpcClient;
  const goodNames = [];
  let goodCount = 0;

  before(async () => {
    c = await startCollector({
      http: { max_request_body_size: BODY_LIMIT },
      grpc: { max_recv_msg_size_mib: GRPC_LIMIT_MIB },
    });
    grpcClient = rawGrpcClient(c.grpcEndpoint);
  });

  after(async () => {
    grpcClient?.close();
    if (c) await c.cleanup();
  });

  async function goodHttp(label) {
    const name = `http-good-${goodCount++}-${label}`;
    const res = await httpRequest(`${c.httpUrl}/v1/traces`, {
      headers: { 'content-type': PROTO },
      body: traceRequest({ resource: { 'service.name': 'otelc-bad-input' }, spans: [{ name }] }),
    });
    assert.equal(res.status, 200, `the good request after "${label}" succeeds: ${res.body}`);
    assert.equal(res.headers['content-type'], PROTO);
    assertCleanResponse(res.body);
    goodNames.push(name);
    assert.ok(c.alive(), 'the collector is still running');
  }

  async function goodGrpc(label) {
    const name = `grpc-good-${goodCount++}-${label}`;
    const r = await grpcUnary(
      grpcClient,
      TRACE_EXPORT,
      traceRequest({ resource: { 'service.name': 'otelc-bad-input' }, spans: [{ name }] }),
    );
    assert.equal(r.code, grpc.status.OK, `the good call after "${label}" succeeds: ${r.details}`);
    assertCleanResponse(r.response);
    goodNames.push(name);
    assert.ok(c.alive(), 'the collector is still running');
  }

  describe('HTTP', () => {
    const cases = [
      { name: 'garbage bytes', body: GARBAGE, status: 400 },
      { name: 'garbage bytes on /v1/metrics', path: '/v1/metrics', body: GARBAGE, status: 400 },
      { name: 'garbage bytes on /v1/logs', path: '/v1/logs', body: GARBAGE, status: 400 },
      { name: 'truncated protobuf', body: TRUNCATED, status: 400 },
      { name: 'invalid JSON', ct: JSON_CT, body: Buffer.from('{"resourceSpans": [{"scopeSpans": ['), status: 400 },
      { name: 'JSON of the wrong shape', ct: JSON_CT, body: Buffer.from('{"resourceSpans": 42}'), status: 400 },
      {
        name: 'JSON with a bad trace id',
        ct: JSON_CT,
        body: Buffer.from(
          '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"not-hex","spanId":"eee19b7ec3c1b174","name":"x"}]}]}]}',
        ),
        status: 400,
      },
      { name: 'wrong content type', ct: 'text/plain', body: ONE_SPAN, status: 415, anyType: true },
      { name: 'wrong path', path: '/v1/nothing', body: ONE_SPAN, status: 404, anyType: true },
      { name: 'wrong method', method: 'GET', body: undefined, status: 405, anyType: true },
      { name: 'oversized body (Expect: 100-continue)', body: bigProto(2 * BODY_LIMIT), status: 413, expectContinue: true },
      // As an SDK sends it: the whole body at once, no Expect. The receiver reads and drops a body
      // within its discard allowance before answering, so the client always gets the 413 rather
      // than a connection reset.
      { name: 'oversized body', body: bigProto(2 * BODY_LIMIT), status: 413, repeat: 20 },
      {
        name: 'gzip bomb',
        headers: { 'content-encoding': 'gzip' },
        body: zlib.gzipSync(Buffer.alloc(16 * BODY_LIMIT)),
        status: 413,
      },
      { name: 'corrupt gzip', headers: { 'content-encoding': 'gzip' }, body: GARBAGE, status: 400 },
      { name: 'deeply nested AnyValue (protobuf)', body: deepProto(), status: 400 },
      { name: 'deeply nested AnyValue (JSON)', ct: JSON_CT, body: deepJson(), status: 400 },
    ];

    for (const k of cases) {
      test(k.name, async (t) => {
        const ct = k.ct ?? PROTO;
        // resetOk (for a case that needs it): a reset is tolerated but counted, and at least one
        // answer must arrive.
        let resets = 0;
        for (let i = 0; i < (k.repeat ?? 1); i++) {
          let res;
          try {
            res = await httpRequest(`${c.httpUrl}${k.path ?? '/v1/traces'}`, {
              method: k.method ?? 'POST',
              headers: { 'content-type': ct, ...(k.headers ?? {}) },
              body: k.body,
              expectContinue: k.expectContinue,
            });
          } catch (e) {
            if (k.resetOk && ['EPIPE', 'ECONNRESET'].includes(e.code)) {
              resets++;
              continue;
            }
            assert.fail(`${k.name}, try ${i + 1}: no response but ${e.code ?? e.message}`);
          }
          assert.equal(res.status, k.status, `${k.name}: ${res.body.toString('utf8').slice(0, 300)}`);
          if (k.status === 400) assertStatusBody(res, ct);
          if (k.status === 413) assert.equal(res.headers['content-type'], ct);
        }
        if (resets > 0) t.diagnostic(`${resets} of ${k.repeat} tries lost the 413 to a connection reset`);
        assert.ok(resets < (k.repeat ?? 1), `${k.name}: every try lost its answer to a reset`);
        await goodHttp(k.name);
      });
    }

    test('empty requests succeed and export nothing', async () => {
      for (const [ct, body, enc] of [
        [PROTO, Buffer.alloc(0)],
        [PROTO, zlib.gzipSync(Buffer.alloc(0)), 'gzip'],
        [JSON_CT, Buffer.from('{}')],
        [JSON_CT, Buffer.from('{"resourceSpans":[]}')],
      ]) {
        for (const p of ['/v1/traces', '/v1/metrics', '/v1/logs']) {
          const res = await httpRequest(`${c.httpUrl}${p}`, {
            headers: { 'content-type': ct, ...(enc ? { 'content-encoding': enc } : {}) },
            body,
          });
          assert.equal(res.status, 200, `${p} ${ct} ${enc ?? ''}: ${res.body}`);
          assert.equal(res.headers['content-type'], ct);
          if (ct === PROTO) assertCleanResponse(res.body);
          else assert.equal(JSON.parse(res.body.toString('utf8')).partialSuccess, undefined);
        }
      }
      await goodHttp('empty');
    });

    test('a good JSON request gets a JSON response', async () => {
      const name = `http-good-${goodCount++}-json`;
      const res = await httpRequest(`${c.httpUrl}/v1/traces`, {
        headers: { 'content-type': JSON_CT },
        body: jsonSpans(name),
      });
      assert.equal(res.status, 200, res.body.toString());
      assert.equal(res.headers['content-type'], JSON_CT);
      assert.equal(typeof JSON.parse(res.body.toString('utf8')), 'object');
      goodNames.push(name);
    });

    test('a body just under the limit is accepted', async () => {
      const body = bigProto(BODY_LIMIT - 4096, 'big-accepted');
      assert.ok(body.length < BODY_LIMIT);
      const res = await httpRequest(`${c.httpUrl}/v1/traces`, { headers: { 'content-type': PROTO }, body });
      assert.equal(res.status, 200, res.body.toString());
      goodNames.push('big-accepted');
    });
  });

  describe('gRPC', () => {
    const cases = [
      { name: 'garbage bytes', body: GARBAGE, code: grpc.status.INVALID_ARGUMENT },
      { name: 'garbage bytes (metrics)', method: METRICS_EXPORT, body: GARBAGE, code: grpc.status.INVALID_ARGUMENT },
      { name: 'garbage bytes (logs)', method: LOGS_EXPORT, body: GARBAGE, code: grpc.status.INVALID_ARGUMENT },
      { name: 'truncated protobuf', body: TRUNCATED, code: grpc.status.INVALID_ARGUMENT },
      { name: 'deeply nested AnyValue', body: deepProto(), code: grpc.status.INVALID_ARGUMENT },
      {
        name: 'message over max_recv_msg_size_mib',
        body: bigProto(2 * GRPC_LIMIT_MIB * 1024 * 1024),
        code: grpc.status.RESOURCE_EXHAUSTED,
      },
      {
        name: 'gzip bomb',
        body: Buffer.alloc(16 * GRPC_LIMIT_MIB * 1024 * 1024),
        gzip: true,
        code: grpc.status.RESOURCE_EXHAUSTED,
      },
      {
        name: 'unknown method',
        method: '/opentelemetry.proto.collector.trace.v1.TraceService/Nope',
        body: ONE_SPAN,
        code: grpc.status.UNIMPLEMENTED,
      },
    ];

    for (const k of cases) {
      test(k.name, async () => {
        // A client of its own, so that a broken connection cannot spoil the next good call.
        const client = rawGrpcClient(
          c.grpcEndpoint,
          k.gzip ? { 'grpc.default_compression_algorithm': 2, 'grpc.default_compression_level': 3 } : {},
        );
        try {
          const r = await grpcUnary(client, k.method ?? TRACE_EXPORT, k.body);
          assert.equal(r.code, k.code, `${k.name}: got ${grpc.status[r.code]} (${r.details})`);
        } finally {
          client.close();
        }
        await goodGrpc(k.name);
      });
    }

    test('empty requests succeed and export nothing', async () => {
      for (const m of [TRACE_EXPORT, METRICS_EXPORT, LOGS_EXPORT]) {
        const r = await grpcUnary(grpcClient, m, Buffer.alloc(0));
        assert.equal(r.code, grpc.status.OK, `${m}: ${r.details}`);
        assertCleanResponse(r.response);
      }
      await goodGrpc('empty');
    });

    test('a gzip-compressed good request arrives', async () => {
      const client = rawGrpcClient(c.grpcEndpoint, { 'grpc.default_compression_algorithm': 2 });
      const name = `grpc-good-${goodCount++}-gzip`;
      try {
        const r = await grpcUnary(client, TRACE_EXPORT, traceRequest({ spans: [{ name }] }));
        assert.equal(r.code, grpc.status.OK, r.details);
      } finally {
        client.close();
      }
      goodNames.push(name);
    });
  });

  test('exactly the good requests arrived, and SIGTERM exits 0', async () => {
    const spans = await c.waitFor(() => c.spans(), goodNames.length, { what: 'good spans', settleMs: 500 });
    assert.deepEqual(spans.map((s) => s.name).sort(), [...goodNames].sort());
    assert.equal(c.points().length, 0);
    assert.equal(c.logs().length, 0);
    for (const sig of ['traces', 'metrics', 'logs']) {
      for (const req of c.read(sig)) {
        const key = { traces: 'resourceSpans', metrics: 'resourceMetrics', logs: 'resourceLogs' }[sig];
        assert.ok((req[key] ?? []).length > 0, `no empty request was exported to ${sig}`);
      }
    }
    const { code, signal } = await c.stop();
    assert.equal(signal, null);
    assert.equal(code, 0, c.stderrTail());
  });
});

describe('command line', { timeout: 120000 }, () => {
  let dir;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otelc-cli-'));
  });

  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // Messages from stdout and stderr; stderr's JSON log lines contribute their string fields.
  function messages({ stdout, stderr }) {
    const parts = [stdout];
    for (const line of stderr.split('\n')) {
      try {
        const obj = JSON.parse(line);
        parts.push(...Object.values(obj).filter((v) => typeof v === 'string'));
      } catch {
        parts.push(line);
      }
    }
    return parts.join('\n');
  }

  function lineOf(text, needle) {
    const i = text.split('\n').findIndex((l) => l.includes(needle));
    assert.ok(i >= 0, `${needle} is in the config`);
    return i + 1;
  }

  const ports = { grpc: 14317, http: 14318, metrics: 18888, health: 13133 };

  test('a valid config validates (exit 0)', async () => {
    const file = path.join(dir, 'valid.yaml');
    fs.writeFileSync(file, buildConfig(ports, dir, { health: true, debug: true }));
    const r = await runCollectorCommand(['validate', '--config', file]);
    assert.equal(r.code, 0, messages(r));
    const r2 = await runCollectorCommand(['validate', `--config=file:${file}`]);
    assert.equal(r2.code, 0, messages(r2));
  });

  const base = buildConfig(ports, '/tmp/otelc-never-written', {});
  const invalid = [
    {
      name: 'unknown key',
      text: base.replace('        endpoint: 127.0.0.1:14317\n', '        endpoint: 127.0.0.1:14317\n        max_recv_msg_size_mb: 4\n'),
      needle: 'max_recv_msg_size_mb',
    },
    {
      name: 'unknown component type',
      text: base.replace('exporters:\n', 'exporters:\n  bogus_exporter:\n    a: 1\n'),
      needle: 'bogus_exporter',
    },
    {
      name: 'pipeline names an undefined component',
      text: base.replace('exporters: [file/logs]', 'exporters: [file/logs, otlp/nowhere]'),
      needle: 'otlp/nowhere',
    },
    {
      name: 'wrong value type',
      text: base.replace('timeout: 100ms', 'timeout: banana'),
      needle: 'banana',
    },
    {
      name: 'YAML syntax error',
      text: base.replace('  batch:\n', '  batch:\n    [unclosed: \n'),
      needle: '[unclosed',
    },
  ];

  for (const k of invalid) {
    test(`validate refuses ${k.name} and names file:line`, async () => {
      assert.notEqual(k.text, base, 'the mutation applied');
      const file = path.join(dir, `${k.name.replace(/\W+/g, '_')}.yaml`);
      fs.writeFileSync(file, k.text);
      const line = lineOf(k.text, k.needle);
      const r = await runCollectorCommand(['validate', '--config', file]);
      assert.equal(r.code, 1, messages(r));
      const msg = messages(r);
      // libyaml notices a syntax error where the next token fails to fit, possibly a line later.
      const lines = k.name === 'YAML syntax error' ? [line, line + 1] : [line];
      assert.ok(
        lines.some((l) => msg.includes(`${file}:${l}:`)),
        `"${file}:${lines.join(' or ')}:" in:\n${msg}`,
      );
      if (k.name !== 'YAML syntax error') assert.ok(msg.includes(k.needle), `${k.needle} named in:\n${msg}`);
      // Running with the same config fails the same way, before serving anything.
      const run = await runCollectorCommand(['--config', file]);
      assert.equal(run.code, 1, messages(run));
    });
  }

  test('validate of a missing file exits 1', async () => {
    const r = await runCollectorCommand(['validate', '--config', path.join(dir, 'missing.yaml')]);
    assert.equal(r.code, 1);
    assert.ok(messages(r).includes('missing.yaml'), messages(r));
  });

  test('--version, --help, components, a bad argument', async () => {
    const v = await runCollectorCommand(['--version']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /\d+\.\d+\.\d+/);
    const h = await runCollectorCommand(['--help']);
    assert.equal(h.code, 0);
    assert.match(h.stdout, /--config/);
    assert.match(h.stdout, /validate/);
    const comp = await runCollectorCommand(['components']);
    assert.equal(comp.code, 0);
    for (const t of ['otlp', 'memory_limiter', 'batch', 'debug', 'file', 'nop', 'health_check']) {
      assert.match(comp.stdout, new RegExp(`- ${t}\\b`), `${t} listed in:\n${comp.stdout}`);
    }
    const bad = await runCollectorCommand(['--no-such-flag']);
    assert.notEqual(bad.code, 0);
  });
});
