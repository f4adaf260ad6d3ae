// Recording, scriptable backends for the exporter tests: what Loki, Prometheus remote write, Tempo
// (OTLP gRPC) and any OTLP/HTTP server would receive. Every request is decoded with the project's
// own proto schemas (proto/, loaded by protobufjs at run time) after snappy or gzip decompression,
// so a test asserts what the exporter really put on the wire. A sink answers 200 unless a test
// scripts it: a list of answers consumed in order (status, headers, delay), then a default, so
// the fault tests can play a backend that fails, throttles, is slow or is down for a while.

import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import snappy from 'snappyjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const PROTO_DIR = process.env.OTC_PROTO_DIR ?? path.resolve(HERE, '../../../proto');

// A decompressed body larger than this is refused: the sinks parse what a collector under test
// sends, and a runaway exporter should fail the test rather than the test process.
const MAX_BODY = 64 * 1024 * 1024;

const PROTO_FILES = [
  'prometheus/remote.proto',
  'loki/push.proto',
  'opentelemetry/proto/collector/trace/v1/trace_service.proto',
  'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
  'opentelemetry/proto/collector/logs/v1/logs_service.proto',
  'google/rpc/status.proto',
];

let rootCache;

// The protobufjs root of every schema the sinks decode, loaded once from PROTO_DIR (imports are
// resolved there too, so the messages are exactly ours).
export function protos() {
  if (rootCache) return rootCache;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
  root.loadSync(PROTO_FILES, { keepCase: false });
  root.resolveAll();
  rootCache = root;
  return root;
}

export function protoType(name) {
  return protos().lookupType(name);
}

export const TYPES = {
  writeRequest: 'prometheus.WriteRequest',
  pushRequest: 'logproto.PushRequest',
  traces: 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest',
  metrics: 'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest',
  logs: 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest',
};

const OTLP_PATHS = { '/v1/traces': 'traces', '/v1/metrics': 'metrics', '/v1/logs': 'logs' };

export const GRPC_METHODS = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};

// Snappy block format (not the framed one), as remote write and Loki use it.
export function snappyDecode(buf) {
  return Buffer.from(snappy.uncompress(buf, MAX_BODY));
}

export function snappyEncode(buf) {
  return Buffer.from(snappy.compress(buf));
}

const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId']);

// protobufjs objects → the OTLP JSON shape that lib/collector.mjs's flatten* helpers read: ids as
// hex, other bytes as base64, 64-bit integers as decimal strings.
function jsonish(v, key) {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
    const b = Buffer.from(v);
    return ID_FIELDS.has(key) ? b.toString('hex') : b.toString('base64');
  }
  if (Array.isArray(v)) return v.map((x) => jsonish(x, key));
  if (v && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = jsonish(x, k);
    return out;
  }
  return v;
}

export function decodeOtlp(signal, buf) {
  const T = protoType(TYPES[signal]);
  return jsonish(T.toObject(T.decode(buf), { longs: String, enums: Number, defaults: false }));
}

export function encodeOtlp(signal, obj) {
  const T = protoType(TYPES[signal]);
  const msg = T.fromObject(obj);
  const err = T.verify(msg);
  if (err) throw new Error(`encodeOtlp(${signal}): ${err}`);
  return Buffer.from(T.encode(msg).finish());
}

// prometheus.WriteRequest → {timeseries: [{labels: [{name, value}], samples: [{value, timestamp}],
// histograms: [...]}], metadata}. Timestamps in ms as Numbers.
export function decodeWriteRequest(buf) {
  const T = protoType(TYPES.writeRequest);
  return T.toObject(T.decode(buf), { longs: Number, enums: String, defaults: true, oneofs: true });
}

// Parses a Loki stream selector `{a="b", c="d\"e"}` into an object (values unescaped as in Go's
// strconv.Unquote for the escapes Prometheus label values use).
export function parseLokiLabels(sel) {
  const s = sel.trim();
  if (!s.startsWith('{') || !s.endsWith('}')) throw new Error(`not a label selector: ${sel}`);
  const out = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  const body = s.slice(1, -1);
  re.lastIndex = 0;
  while (re.lastIndex < body.length) {
    const m = re.exec(body);
    if (!m) throw new Error(`malformed label selector: ${sel}`);
    if (m[1] in out) throw new Error(`duplicate label ${m[1]} in ${sel}`);
    out[m[1]] = m[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
  }
  return out;
}

// logproto.PushRequest (protobuf) or the JSON push body → {streams: [{labels (selector string),
// labelMap, entries: [{tsNs: BigInt, line, metadata: {name: value}}]}]}.
export function decodePushRequest(buf, contentType = 'application/x-protobuf') {
  if (/json/.test(contentType)) {
    const j = JSON.parse(buf.toString('utf8'));
    return {
      format: 'json',
      streams: (j.streams ?? []).map((st) => {
        const labelMap = st.stream ?? {};
        return {
          labels: `{${Object.entries(labelMap)
            .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
            .join(', ')}}`,
          labelMap,
          entries: (st.values ?? []).map((v) => ({ tsNs: BigInt(v[0]), line: v[1], metadata: v[2] ?? {} })),
        };
      }),
    };
  }
  const T = protoType(TYPES.pushRequest);
  const o = T.toObject(T.decode(buf), { longs: String, defaults: true });
  return {
    format: 'protobuf',
    streams: o.streams.map((st) => ({
      labels: st.labels,
      labelMap: parseLokiLabels(st.labels),
      entries: st.entries.map((e) => ({
        tsNs: BigInt(e.timestamp?.seconds ?? 0) * 1000000000n + BigInt(e.timestamp?.nanos ?? 0),
        line: e.line,
        metadata: Object.fromEntries((e.structuredMetadata ?? []).map((p) => [p.name, p.value])),
      })),
    })),
  };
}

function statusClass(status) {
  return status >= 200 && status < 300;
}

// The part every sink shares: the request log, the answer script and waiting.
class SinkBase {
  constructor({ name = 'sink' } = {}) {
    this.name = name;
    this.requests = []; // {at (ms since epoch), ..., decoded, decodeError, status|code, accepted}
    this.answers = []; // scripted answers, consumed in order
    this.defaultAnswer = {};
    this.port = 0;
    this.inFlight = 0;
    this.maxInFlight = 0;
  }

  // Scripts the next answers ({status|code, headers, body, delayMs}), then `then` for the rest.
  script(answers, then = {}) {
    this.answers = [...answers];
    this.defaultAnswer = then;
  }

  nextAnswer() {
    return this.answers.length > 0 ? this.answers.shift() : this.defaultAnswer;
  }

  reset() {
    this.requests = [];
    this.answers = [];
    this.defaultAnswer = {};
    this.maxInFlight = 0;
  }

  accepted() {
    return this.requests.filter((r) => r.accepted);
  }

  decodeErrors() {
    return this.requests.filter((r) => r.decodeError).map((r) => r.decodeError);
  }

  // Polls pred(this) until it is truthy; throws with `what` and the sink's log on timeout.
  async waitFor(pred, { timeoutMs = 15000, what = 'a condition', intervalMs = 25 } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = pred(this);
      if (v) return v;
      if (Date.now() > deadline) {
        const log = this.requests
          .slice(-10)
          .map((r) => `${new Date(r.at).toISOString()} ${r.status ?? r.code} ${r.decodeError ?? ''}`)
          .join('\n');
        throw new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}; ` +
          `${this.requests.length} requests, last:\n${log}`);
      }
      await sleep(intervalMs);
    }
  }
}

// An HTTP/1.1 server on 127.0.0.1 that decodes each POST with `decode(body, req)` after undoing
// Content-Encoding (snappy, gzip, deflate). close() stops listening and cuts every connection, so
// the backend is really down; listen() again brings it back on the same port.
export class HttpSink extends SinkBase {
  constructor({ decode, name = 'http-sink' } = {}) {
    super({ name });
    this.decode = decode ?? ((body) => body);
    this.server = null;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(port = this.port) {
    const server = http.createServer((req, res) => this.#handle(req, res));
    server.keepAliveTimeout = 30000;
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.port = server.address().port;
    return this;
  }

  async close() {
    const s = this.server;
    if (!s) return;
    this.server = null;
    const closed = new Promise((resolve) => s.close(() => resolve()));
    s.closeAllConnections();
    await closed;
  }

  #handle(req, res) {
    const chunks = [];
    let size = 0;
    req.on('data', (d) => {
      size += d.length;
      if (size <= MAX_BODY) chunks.push(d);
    });
    req.on('end', async () => {
      const rec = {
        at: Date.now(),
        method: req.method,
        url: req.url,
        httpVersion: req.httpVersion,
        headers: req.headers,
        size,
      };
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      const raw = Buffer.concat(chunks);
      try {
        if (size > MAX_BODY) throw new Error(`body of ${size} bytes exceeds ${MAX_BODY}`);
        let body = raw;
        const enc = (req.headers['content-encoding'] ?? '').toLowerCase();
        if (enc === 'snappy') body = snappyDecode(raw);
        else if (enc === 'gzip') body = zlib.gunzipSync(raw, { maxOutputLength: MAX_BODY });
        else if (enc === 'deflate') body = zlib.inflateSync(raw, { maxOutputLength: MAX_BODY });
        else if (enc !== '' && enc !== 'identity') throw new Error(`unknown Content-Encoding ${enc}`);
        rec.raw = raw;
        rec.body = body;
        rec.decoded = this.decode(body, req);
      } catch (e) {
        rec.decodeError = `${req.method} ${req.url}: ${e.message}`;
      }
      const a = rec.decodeError ? { status: 400, body: rec.decodeError } : this.nextAnswer();
      rec.status = a.status ?? 200;
      rec.accepted = statusClass(rec.status);
      this.requests.push(rec);
      if (a.delayMs) await sleep(a.delayMs);
      this.inFlight--;
      rec.answeredAt = Date.now();
      if (res.destroyed) return;
      const headers = { ...(a.headers ?? {}) };
      let out = a.body ?? '';
      if (!Buffer.isBuffer(out)) out = Buffer.from(String(out));
      headers['content-length'] = out.length;
      res.writeHead(rec.status, headers);
      res.end(out);
    });
  }
}

// Prometheus remote write: POST /api/v1/write, snappy + prometheus.WriteRequest.
export class RemoteWriteSink extends HttpSink {
  constructor({ name = 'remote-write-sink' } = {}) {
    super({
      name,
      decode: (body, req) => {
        if (req.url !== '/api/v1/write') throw new Error(`unexpected path ${req.url}`);
        return decodeWriteRequest(body);
      },
    });
  }

  get writeUrl() {
    return `${this.url}/api/v1/write`;
  }

  // Every series of the accepted requests, merged by label set.
  series() {
    return mergeSeries(this.accepted().map((r) => r.decoded));
  }

  sampleCount() {
    return this.accepted().reduce(
      (n, r) => n + r.decoded.timeseries.reduce((m, ts) => m + ts.samples.length + ts.histograms.length, 0),
      0,
    );
  }
}

export function labelsKey(labels) {
  return labels.map((l) => `${l.name}=${JSON.stringify(l.value)}`).join(',');
}

// Merges the time series of several WriteRequests by label set (in the order the labels came):
// Map key → {labels: [{name, value}], labelMap, name, samples, histograms, exemplars}.
export function mergeSeries(writeRequests) {
  const out = new Map();
  for (const wr of writeRequests) {
    for (const ts of wr.timeseries ?? []) {
      const key = labelsKey(ts.labels);
      let s = out.get(key);
      if (!s) {
        const labelMap = Object.fromEntries(ts.labels.map((l) => [l.name, l.value]));
        s = { key, labels: ts.labels, labelMap, name: labelMap.__name__, samples: [], histograms: [], exemplars: [] };
        out.set(key, s);
      }
      s.samples.push(...ts.samples);
      s.histograms.push(...ts.histograms);
      s.exemplars.push(...(ts.exemplars ?? []));
    }
  }
  return out;
}

// Loki: POST /loki/api/v1/push, snappy protobuf or JSON.
export class LokiSink extends HttpSink {
  constructor({ name = 'loki-sink' } = {}) {
    super({
      name,
      decode: (body, req) => {
        if (req.url !== '/loki/api/v1/push') throw new Error(`unexpected path ${req.url}`);
        return decodePushRequest(body, req.headers['content-type'] ?? '');
      },
    });
  }

  get pushUrl() {
    return `${this.url}/loki/api/v1/push`;
  }

  // Every stream of the accepted requests: [{labels, labelMap, entries, request}].
  streams() {
    const out = [];
    for (const r of this.accepted()) for (const st of r.decoded.streams) out.push({ ...st, request: r });
    return out;
  }

  entries() {
    return this.streams().flatMap((st) => st.entries.map((e) => ({ ...e, labels: st.labelMap })));
  }
}

// OTLP over HTTP: /v1/{traces,metrics,logs}, protobuf or JSON, optionally gzip.
export class OtlpHttpSink extends HttpSink {
  constructor({ name = 'otlp-http-sink' } = {}) {
    super({
      name,
      decode: (body, req) => {
        const signal = OTLP_PATHS[req.url];
        if (!signal) throw new Error(`unexpected path ${req.url}`);
        const ct = req.headers['content-type'] ?? '';
        if (/json/.test(ct)) return { signal, request: JSON.parse(body.toString('utf8')) };
        if (!/protobuf/.test(ct)) throw new Error(`unexpected Content-Type ${ct}`);
        return { signal, request: decodeOtlp(signal, body) };
      },
    });
  }

  // The decoded Export requests of one signal that were answered 2xx.
  received(signal) {
    return this.accepted()
      .filter((r) => r.decoded.signal === signal)
      .map((r) => r.decoded.request);
  }
}

const identity = (x) => x;

// OTLP over gRPC (the three Export methods) with @grpc/grpc-js, the request bytes decoded by
// protobufjs. An answer is {code (grpc.status), details, delayMs, retryDelayMs}; retryDelayMs
// adds a google.rpc.RetryInfo detail as OTLP throttling does.
export class OtlpGrpcSink extends SinkBase {
  constructor({ name = 'otlp-grpc-sink' } = {}) {
    super({ name });
    this.server = null;
  }

  get endpoint() {
    return `127.0.0.1:${this.port}`;
  }

  async listen(port = this.port) {
    const server = new grpc.Server();
    for (const [signal, method] of Object.entries(GRPC_METHODS)) {
      const def = {
        Export: {
          path: method,
          requestStream: false,
          responseStream: false,
          requestSerialize: identity,
          requestDeserialize: identity,
          responseSerialize: identity,
          responseDeserialize: identity,
        },
      };
      server.addService(def, { Export: (call, cb) => this.#handle(signal, call, cb) });
    }
    this.port = await new Promise((resolve, reject) => {
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      );
    });
    this.server = server;
    return this;
  }

  async close() {
    const s = this.server;
    if (!s) return;
    this.server = null;
    s.forceShutdown();
  }

  async #handle(signal, call, cb) {
    const rec = { at: Date.now(), signal, metadata: call.metadata.getMap(), size: call.request.length, raw: call.request };
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      rec.decoded = { signal, request: decodeOtlp(signal, call.request) };
    } catch (e) {
      rec.decodeError = `${signal}: ${e.message}`;
    }
    const a = rec.decodeError ? { code: grpc.status.INVALID_ARGUMENT, details: rec.decodeError } : this.nextAnswer();
    rec.code = a.code ?? grpc.status.OK;
    rec.accepted = rec.code === grpc.status.OK;
    this.requests.push(rec);
    if (a.delayMs) await sleep(a.delayMs);
    this.inFlight--;
    if (rec.accepted) return cb(null, Buffer.alloc(0));
    const md = new grpc.Metadata();
    if (a.retryDelayMs) md.set('grpc-status-details-bin', retryInfoStatus(rec.code, a.details ?? '', a.retryDelayMs));
    return cb({ code: rec.code, details: a.details ?? 'scripted failure', metadata: md });
  }

  received(signal) {
    return this.accepted()
      .filter((r) => r.signal === signal)
      .map((r) => r.decoded.request);
  }
}

// google.rpc.Status{code, message, details: [Any{google.rpc.RetryInfo{retry_delay}}]} bytes.
function retryInfoStatus(code, message, delayMs) {
  const Duration = protobuf.Writer.create();
  const secs = Math.floor(delayMs / 1000);
  const nanos = (delayMs % 1000) * 1e6;
  if (secs) Duration.uint32(8).int64(secs);
  if (nanos) Duration.uint32(16).int32(nanos);
  const retryInfo = protobuf.Writer.create().uint32(10).bytes(Duration.finish()).finish();
  const any = protobuf.Writer.create()
    .uint32(10)
    .string('type.googleapis.com/google.rpc.RetryInfo')
    .uint32(18)
    .bytes(retryInfo)
    .finish();
  const st = protobuf.Writer.create().uint32(8).int32(code).uint32(18).string(message).uint32(26).bytes(any).finish();
  return Buffer.from(st);
}

// Creates a sink and starts it on a free loopback port; the caller closes it (in an `after` hook).
export async function startSink(SinkClass, opts = {}) {
  const s = new SinkClass(opts);
  await s.listen(0);
  return s;
}

// --- The collector side: configs that route the OTLP receiver to exporters under test ---

function yamlScalar(v) {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  return JSON.stringify(String(v)); // a JSON string is a valid YAML double-quoted scalar
}

// A small YAML writer for the configs (maps, lists, scalars), enough for collector configs.
export function toYaml(obj, indent = 0) {
  const pad = ' '.repeat(indent);
  let out = '';
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      if (v.every((x) => x === null || typeof x !== 'object')) out += `${pad}${k}: [${v.map(yamlScalar).join(', ')}]\n`;
      else {
        out += `${pad}${k}:\n`;
        for (const x of v) {
          const inner = toYaml(x, indent + 4);
          out += `${pad}  - ${inner.slice(indent + 4)}`;
        }
      }
    } else if (v && typeof v === 'object') {
      out += Object.keys(v).length ? `${pad}${k}:\n${toYaml(v, indent + 2)}` : `${pad}${k}: {}\n`;
    } else {
      out += `${pad}${k}: ${yamlScalar(v)}\n`;
    }
  }
  return out;
}

// The config of a collector (ours or the reference) whose OTLP receiver feeds `exporters` (id →
// settings) through the given processors. pipelines: signal → exporter ids. opts.reference writes
// the reference collector's telemetry section (v0.162 refuses `address`).
export function exporterPipelineConfig(ports, { exporters, pipelines, processors, reference = false }) {
  const procs = processors ?? {
    memory_limiter: { check_interval: '1s', limit_mib: 1024, spike_limit_mib: 256 },
    batch: { timeout: '100ms' },
  };
  const telemetry = reference
    ? {
        logs: { level: 'info' },
        metrics: {
          level: 'normal',
          readers: [{ pull: { exporter: { prometheus: { host: '127.0.0.1', port: ports.metrics } } } }],
        },
      }
    : { metrics: { address: `127.0.0.1:${ports.metrics}` } };
  const cfg = {
    receivers: {
      otlp: {
        protocols: {
          grpc: { endpoint: `127.0.0.1:${ports.grpc}` },
          http: { endpoint: `127.0.0.1:${ports.http}` },
        },
      },
    },
    processors: procs,
    exporters,
    service: {
      telemetry,
      pipelines: Object.fromEntries(
        Object.entries(pipelines).map(([sig, ids]) => [
          sig,
          { receivers: ['otlp'], processors: Object.keys(procs), exporters: ids },
        ]),
      ),
    },
  };
  if (Object.keys(procs).length === 0) delete cfg.processors;
  return toYaml(cfg);
}

// For `after` hooks: stops a collector of ours with SIGTERM (a clean shutdown drains the exporters;
// under ASan it also runs the leak check), then kills what is left and removes its directory.
// Returns an error message when the exit was not clean, for the hook to assert on after the rest
// of the cleanup has run.
export async function stopAndClean(col) {
  if (!col) return null;
  let problem = null;
  try {
    const exit = await col.stop({ timeoutMs: 20000 });
    if (!exit || exit.code !== 0 || exit.signal) {
      problem = `collector exit ${JSON.stringify(exit)} after SIGTERM:\n${col.stderrTail(30)}`;
    }
  } catch (e) {
    problem = e.message;
  }
  await col.cleanup();
  return problem;
}
