// Raw clients for requests that SDKs never send: an HTTP client that keeps the response even when
// the server answers before reading the whole body (413), and a gRPC client that sends raw bytes to
// an OTLP Export method.

import http from 'node:http';

import grpc from '@grpc/grpc-js';

export const TRACE_EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
export const METRICS_EXPORT = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
export const LOGS_EXPORT = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

// Resolves {status, headers, body: Buffer}. With expectContinue the body is sent only after the
// server's `100 Continue` (as curl does for large bodies), so a server that refuses by the headers
// alone answers before any body byte is on the wire. Without it the whole body is written, as the
// SDKs do, and a response that the server sent before closing is kept even if a write then fails.
export function httpRequest(url, { method = 'POST', headers = {}, body, expectContinue = false } = {}) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const all = { ...headers };
    if (body !== undefined && !Object.keys(all).some((h) => h.toLowerCase() === 'content-length')) {
      all['content-length'] = body.length;
    }
    // Node sends the headers at once when they carry Expect, so they must be complete here.
    if (expectContinue) all.expect = '100-continue';
    const req = http.request(url, { method, headers: all, agent: false });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      const done = () => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) });
      };
      res.on('end', done);
      res.on('error', done);
      res.on('aborted', done);
    });
    req.on('error', (e) => {
      // An EPIPE or ECONNRESET after the response arrived is the early answer's doing.
      setTimeout(() => {
        if (!settled) {
          settled = true;
          reject(e);
        }
      }, 200);
    });
    req.setTimeout(15000, () => req.destroy(new Error(`${method} ${url} timed out`)));
    if (body !== undefined) {
      if (expectContinue) {
        req.on('continue', () => req.end(body));
      } else {
        req.end(body);
      }
    } else {
      req.end();
    }
  });
}

// A gRPC client of one channel, with identity (de)serializers so that requests are raw Buffers.
export function rawGrpcClient(endpoint, options = {}) {
  return new grpc.Client(endpoint, grpc.credentials.createInsecure(), options);
}

// Resolves {code, details, response: Buffer|undefined, metadata} for one unary call.
export function grpcUnary(client, method, buf, { deadlineMs = 10000 } = {}) {
  return new Promise((resolve) => {
    const call = client.makeUnaryRequest(
      method,
      (x) => x,
      (x) => x,
      buf,
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (err, response) => {
        if (err) resolve({ code: err.code, details: err.details, metadata: err.metadata });
        else resolve({ code: grpc.status.OK, details: '', response });
      },
    );
    void call;
  });
}

export { grpc };
