// TLS and bearer-token auth, with certificates made here by openssl: a CA, a server certificate for
// 127.0.0.1/localhost, a client certificate from the same CA and one from another CA.
// Receivers: server TLS on both transports (a client that trusts the CA gets in, one that does not
// fails), mutual TLS (no client certificate or one from the wrong CA is refused at the handshake),
// min_version 1.3 (a TLS 1.2-only client is refused), and bearertokenauth (a missing or wrong token
// gets 401 / UNAUTHENTICATED, counted, and nothing of it is exported).
// Exporters: otlp_http, loki and otlp_grpc with ca_file, a client certificate and bearertokenauth
// reach backends that require both.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import grpc from '@grpc/grpc-js';

import { TRACE_EXPORT } from './lib/clients.mjs';
import { Collector, freePort, metricValue, parsePrometheus } from './lib/collector.mjs';
import { logsRequest, spansRequest } from './lib/proto.mjs';
import { decodeOtlp, decodePushRequest, snappyDecode } from './lib/sinks.mjs';

const TOKEN = 's3cret-token';
let dir;
const pem = {};

function openssl(args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(name) {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`]);
}

function makeCert(name, ca, san) {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  fs.writeFileSync(path.join(dir, `${name}.ext`),
    `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`,
    '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
}

const file = (n) => path.join(dir, n);
const read = (n) => fs.readFileSync(file(n));

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'otelc-tls-'));
  makeCa('ca');
  makeCa('wrongca');
  makeCert('server', 'ca', 'IP:127.0.0.1,DNS:localhost');
  makeCert('client', 'ca', 'DNS:client');
  makeCert('badclient', 'wrongca', 'DNS:client');
  for (const n of ['ca', 'wrongca', 'server', 'client', 'badclient']) {
    pem[n] = { crt: read(`${n}.crt`), key: n === 'ca' || n === 'wrongca' ? undefined : read(`${n}.key`) };
  }
});

after(() => {
  if (dir && !process.env.OTC_TEST_KEEP) fs.rmSync(dir, { recursive: true, force: true });
});

// One HTTPS POST; resolves {status, headers, body} or {error}.
function httpsPost(port, urlPath, { ca, cert, key, headers = {}, body = Buffer.alloc(0), maxVersion } = {}) {
  return new Promise((resolve) => {
    const req = https.request({
      host: '127.0.0.1', port, path: urlPath, method: 'POST', agent: false, ca, cert, key, maxVersion,
      headers: { 'content-length': body.length, ...headers }, timeout: 10000,
    });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', (e) => resolve({ error: e }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

// A TLS handshake alone (ALPN h2 or http/1.1); resolves {ok, version} or {error}.
function handshake(port, { maxVersion, minVersion, cert, key, alpn = ['http/1.1'] } = {}) {
  return new Promise((resolve) => {
    const s = tls.connect({
      host: '127.0.0.1', port, ca: pem.ca.crt, cert, key, maxVersion, minVersion, ALPNProtocols: alpn,
      servername: 'localhost',
    });
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
    s.once('secureConnect', () => {
      // With TLS 1.3 a refused client certificate shows after the handshake: wait for an alert.
      setTimeout(() => {
        const version = s.getProtocol();
        s.destroy();
        resolve({ ok: true, version });
      }, 300);
    });
    s.once('error', (e) => resolve({ error: e }));
  });
}

function grpcExport(port, { creds, token, body }) {
  const client = new grpc.Client(`127.0.0.1:${port}`, creds);
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('authorization', token);
  return new Promise((resolve) => {
    client.makeUnaryRequest(TRACE_EXPORT, (x) => x, (x) => x, body, md, { deadline: Date.now() + 8000 },
      (err) => {
        client.close();
        resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK });
      });
  });
}

describe('receivers: TLS, mutual TLS, min_version and bearertokenauth', () => {
  let col;
  const p = {};

  before(async () => {
    p.tlsGrpc = await freePort();
    p.tlsHttp = await freePort();
    col = new Collector({
      configText: (ports, d) => `
extensions:
  bearertokenauth/in:
    token: ${TOKEN}
receivers:
  otlp/mtls:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${ports.grpc}
        tls: {cert_file: ${file('server.crt')}, key_file: ${file('server.key')}, client_ca_file: ${file('ca.crt')}, min_version: "1.3"}
        auth: {authenticator: bearertokenauth/in}
      http:
        endpoint: 127.0.0.1:${ports.http}
        tls: {cert_file: ${file('server.crt')}, key_file: ${file('server.key')}, client_ca_file: ${file('ca.crt')}, min_version: "1.3"}
        auth: {authenticator: bearertokenauth/in}
  otlp/tls:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${p.tlsGrpc}
        tls: {cert_file: ${file('server.crt')}, key_file: ${file('server.key')}}
      http:
        endpoint: 127.0.0.1:${p.tlsHttp}
        tls: {cert_file: ${file('server.crt')}, key_file: ${file('server.key')}}
processors:
  batch:
    timeout: 100ms
exporters:
  file/traces:
    path: ${path.join(d, 'traces.jsonl')}
service:
  extensions: [bearertokenauth/in]
  telemetry:
    metrics:
      address: 127.0.0.1:${ports.metrics}
  pipelines:
    traces:
      receivers: [otlp/mtls, otlp/tls]
      processors: [batch]
      exporters: [file/traces]
`,
    });
    await col.start();
  });

  after(async () => {
    if (col) {
      col.kill();
      if (!process.env.OTC_TEST_KEEP) fs.rmSync(col.dir, { recursive: true, force: true });
    }
  });

  const names = () => new Set(col.spans().map((s) => s.name));
  const pb = { 'content-type': 'application/x-protobuf' };

  test('server TLS: a client that trusts the CA is served, one that does not fails', async () => {
    const ok = await httpsPost(p.tlsHttp, '/v1/traces', { ca: pem.ca.crt, headers: pb, body: spansRequest('tls-http', 2) });
    assert.equal(ok.status, 200, String(ok.error ?? ok.body));
    const untrusted = await httpsPost(p.tlsHttp, '/v1/traces', { headers: pb, body: spansRequest('untrusted-http', 1) });
    assert.ok(untrusted.error, 'a client without the CA must not connect');
    const wrongCa = await httpsPost(p.tlsHttp, '/v1/traces', { ca: pem.wrongca.crt, headers: pb, body: spansRequest('untrusted-http', 1) });
    assert.ok(wrongCa.error);

    const g = await grpcExport(p.tlsGrpc, { creds: grpc.credentials.createSsl(pem.ca.crt), body: spansRequest('tls-grpc', 3) });
    assert.equal(g.code, grpc.status.OK, g.details);
    const gu = await grpcExport(p.tlsGrpc, { creds: grpc.credentials.createSsl(pem.wrongca.crt), body: spansRequest('untrusted-grpc', 1) });
    assert.equal(gu.code, grpc.status.UNAVAILABLE);
    // Plaintext against a TLS port gets nowhere either.
    const gp = await grpcExport(p.tlsGrpc, { creds: grpc.credentials.createInsecure(), body: spansRequest('untrusted-grpc', 1) });
    assert.notEqual(gp.code, grpc.status.OK);
  });

  test('mutual TLS: no client certificate or one from another CA is refused', async () => {
    const auth = { ...pb, authorization: `Bearer ${TOKEN}` };
    for (const [cert, key] of [[undefined, undefined], [pem.badclient.crt, pem.badclient.key]]) {
      const r = await httpsPost(col.ports.http, '/v1/traces', { ca: pem.ca.crt, cert, key, headers: auth, body: spansRequest('nocert-http', 1) });
      assert.ok(r.error, `HTTP without a valid client certificate got ${r.status}`);
      const creds = cert ? grpc.credentials.createSsl(pem.ca.crt, key, cert) : grpc.credentials.createSsl(pem.ca.crt);
      const g = await grpcExport(col.ports.grpc, { creds, token: `Bearer ${TOKEN}`, body: spansRequest('nocert-grpc', 1) });
      assert.equal(g.code, grpc.status.UNAVAILABLE, `gRPC without a valid client certificate: ${g.code} ${g.details}`);
    }
    const ok = await httpsPost(col.ports.http, '/v1/traces', {
      ca: pem.ca.crt, cert: pem.client.crt, key: pem.client.key, headers: auth, body: spansRequest('mtls-http', 4),
    });
    assert.equal(ok.status, 200, String(ok.error ?? ok.body));
    const g = await grpcExport(col.ports.grpc, {
      creds: grpc.credentials.createSsl(pem.ca.crt, pem.client.key, pem.client.crt), token: `Bearer ${TOKEN}`,
      body: spansRequest('mtls-grpc', 5),
    });
    assert.equal(g.code, grpc.status.OK, g.details);
  });

  test('min_version 1.3 refuses a TLS 1.2-only client on both transports', async () => {
    const client = { cert: pem.client.crt, key: pem.client.key };
    for (const [port, alpn] of [[col.ports.http, ['http/1.1']], [col.ports.grpc, ['h2']]]) {
      const old = await handshake(port, { ...client, maxVersion: 'TLSv1.2', alpn });
      assert.ok(old.error, `a TLS 1.2 client was accepted on port ${port}`);
      const cur = await handshake(port, { ...client, minVersion: 'TLSv1.3', alpn });
      assert.ok(cur.ok, `TLS 1.3 failed on port ${port}: ${cur.error}`);
      assert.equal(cur.version, 'TLSv1.3');
    }
    // Without min_version (the otlp/tls receiver) TLS 1.2 is served.
    const tls12 = await handshake(p.tlsHttp, { maxVersion: 'TLSv1.2' });
    assert.equal(tls12.version, 'TLSv1.2');
  });

  test('bearertokenauth: a missing or wrong token is refused on both transports and not exported', async () => {
    const mtls = { ca: pem.ca.crt, cert: pem.client.crt, key: pem.client.key };
    const creds = () => grpc.credentials.createSsl(pem.ca.crt, pem.client.key, pem.client.crt);
    for (const token of [undefined, 'Bearer wrong', TOKEN, `bearer ${TOKEN}`]) {
      const headers = { ...pb, ...(token ? { authorization: token } : {}) };
      const r = await httpsPost(col.ports.http, '/v1/traces', { ...mtls, headers, body: spansRequest('denied-http', 2) });
      assert.equal(r.status, 401, `token ${token}: ${r.error ?? r.status}`);
      assert.equal(r.headers['www-authenticate'], 'Bearer');
      const g = await grpcExport(col.ports.grpc, { creds: creds(), token, body: spansRequest('denied-grpc', 2) });
      assert.equal(g.code, grpc.status.UNAUTHENTICATED, `token ${token}: ${g.code} ${g.details}`);
    }
    // JSON requests get a JSON status.
    const j = await httpsPost(col.ports.http, '/v1/traces', {
      ...mtls, headers: { 'content-type': 'application/json' }, body: Buffer.from('{}'),
    });
    assert.equal(j.status, 401);
    assert.equal(JSON.parse(j.body.toString()).code, 16);
    assert.match(JSON.parse(j.body.toString()).message, /missing or empty authorization header/);

    // What was accepted arrives; nothing refused does.
    const want = ['tls-http-1', 'tls-grpc-2', 'mtls-http-3', 'mtls-grpc-4'];
    const deadline = Date.now() + 10000;
    while (!want.every((n) => names().has(n)) && Date.now() < deadline) await sleep(50);
    await sleep(300);
    const got = col.spans();
    assert.equal(got.length, 2 + 3 + 4 + 5, `spans: ${[...names()].join(', ')}`);
    for (const s of got) assert.doesNotMatch(s.name, /^(denied|untrusted|nocert)-/);

    const samples = parsePrometheus(await (await fetch(col.metricsUrl)).text());
    const unauth = (transport) => metricValue(samples, 'otelcol_receiver_unauthenticated_requests',
      { receiver: 'otlp/mtls', transport });
    assert.equal(unauth('http'), 5);
    assert.equal(unauth('grpc'), 4);
    assert.equal(metricValue(samples, 'otelcol_receiver_accepted_spans', { receiver: 'otlp/mtls' }), 9);
  });
});

describe('exporters: TLS with a client certificate and bearertokenauth', () => {
  let col;
  let httpsServer;
  let grpcServer;
  const seen = [];
  const grpcSeen = [];

  before(async () => {
    // One HTTPS backend for otlp_http and loki: it requires a client certificate from the CA and
    // records the token of each request.
    httpsServer = https.createServer({
      key: pem.server.key, cert: pem.server.crt, ca: pem.ca.crt, requestCert: true, rejectUnauthorized: true,
    }, (req, res) => {
      const chunks = [];
      req.on('data', (d) => chunks.push(d));
      req.on('end', () => {
        const rec = { url: req.url, auth: req.headers.authorization, authorized: req.socket.authorized, body: Buffer.concat(chunks), headers: req.headers };
        seen.push(rec);
        const ok = rec.auth === 'Bearer out-token';
        res.writeHead(ok ? (req.url.startsWith('/loki') ? 204 : 200) : 401);
        res.end();
      });
    });
    await new Promise((r) => httpsServer.listen(0, '127.0.0.1', r));

    grpcServer = new grpc.Server();
    const identity = (x) => x;
    grpcServer.addService({
      Export: { path: TRACE_EXPORT, requestStream: false, responseStream: false, requestSerialize: identity,
        requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
    }, {
      Export: (call, cb) => {
        const auth = call.metadata.get('authorization')[0];
        grpcSeen.push({ auth, body: call.request, peerCert: call.getPeer() });
        if (auth !== 'Bearer out-token') return cb({ code: grpc.status.UNAUTHENTICATED, details: 'bad token' });
        return cb(null, Buffer.alloc(0));
      },
    });
    const grpcPort = await new Promise((resolve, reject) => grpcServer.bindAsync('127.0.0.1:0',
      grpc.ServerCredentials.createSsl(pem.ca.crt, [{ private_key: pem.server.key, cert_chain: pem.server.crt }], true),
      (e, port) => (e ? reject(e) : resolve(port))));

    const httpsPort = httpsServer.address().port;
    const clientTls = `{ca_file: ${file('ca.crt')}, cert_file: ${file('client.crt')}, key_file: ${file('client.key')}}`;
    col = new Collector({
      configText: (ports) => `
extensions:
  bearertokenauth/out:
    filename: ${file('out.token')}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${ports.grpc}
      http:
        endpoint: 127.0.0.1:${ports.http}
processors:
  batch:
    timeout: 100ms
exporters:
  otlp_http/tls:
    endpoint: https://127.0.0.1:${httpsPort}
    tls: ${clientTls}
    auth: {authenticator: bearertokenauth/out}
  loki/tls:
    endpoint: https://127.0.0.1:${httpsPort}/loki/api/v1/push
    tls: ${clientTls}
    auth: {authenticator: bearertokenauth/out}
  otlp_grpc/tls:
    endpoint: 127.0.0.1:${grpcPort}
    tls: ${clientTls}
    auth: {authenticator: bearertokenauth/out}
service:
  extensions: [bearertokenauth/out]
  telemetry:
    metrics:
      address: 127.0.0.1:${ports.metrics}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp_http/tls, otlp_grpc/tls]
    logs:
      receivers: [otlp]
      processors: [batch]
      exporters: [loki/tls]
`,
    });
    fs.writeFileSync(file('out.token'), 'out-token\n');
    await col.start();
  });

  after(async () => {
    if (col) {
      col.kill();
      if (!process.env.OTC_TEST_KEEP) fs.rmSync(col.dir, { recursive: true, force: true });
    }
    httpsServer?.closeAllConnections();
    httpsServer?.close();
    grpcServer?.forceShutdown();
  });

  test('otlp_http, loki and otlp_grpc send the token over mutual TLS', async () => {
    const post = (p, body) => fetch(`${col.httpUrl}${p}`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
    assert.equal((await post('/v1/traces', spansRequest('exp', 7))).status, 200);
    assert.equal((await post('/v1/logs', logsRequest('exp-log', 3))).status, 200);
    const deadline = Date.now() + 15000;
    const spansAt = () => seen.filter((r) => r.url === '/v1/traces');
    const lokiAt = () => seen.filter((r) => r.url.startsWith('/loki'));
    while ((spansAt().length === 0 || lokiAt().length === 0 || grpcSeen.length === 0) && Date.now() < deadline) await sleep(50);
    assert.ok(spansAt().length > 0 && lokiAt().length > 0 && grpcSeen.length > 0,
      `https requests: ${seen.map((r) => r.url)}, grpc: ${grpcSeen.length}\n${col.stderrTail()}`);
    for (const r of seen) {
      assert.equal(r.authorized, true);
      assert.equal(r.auth, 'Bearer out-token');
    }
    for (const r of grpcSeen) assert.equal(r.auth, 'Bearer out-token');
    const unzip = (r) => (r.headers['content-encoding'] === 'gzip' ? zlib.gunzipSync(r.body) : r.body);
    const spans = spansAt().flatMap((r) => decodeOtlp('traces', unzip(r)).resourceSpans ?? [])
      .flatMap((rs) => rs.scopeSpans).flatMap((ss) => ss.spans);
    assert.equal(spans.length, 7);
    const grpcSpans = grpcSeen.flatMap((r) => decodeOtlp('traces', r.body).resourceSpans ?? [])
      .flatMap((rs) => rs.scopeSpans).flatMap((ss) => ss.spans);
    assert.equal(grpcSpans.length, 7);
    const push = lokiAt().map((r) => decodePushRequest(snappyDecode(r.body), r.headers['content-type']));
    const entries = push.flatMap((p) => p.streams).flatMap((s) => s.entries);
    assert.equal(entries.length, 3);
  });
});
