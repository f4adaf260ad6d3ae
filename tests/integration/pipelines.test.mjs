// The pipeline graph (issue 2): one receiver feeding several pipelines of a signal, a pipeline
// fanning out to several exporters, one exporter shared by pipelines of different signals, and a
// signal no pipeline takes. Each path is checked by the items that arrive at file exporters and by
// the self-metrics, which must count an item once per component that handled it.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { httpRequest } from './lib/clients.mjs';
import { flattenLogs, flattenSpans, metricValue, startCollector } from './lib/collector.mjs';
import { logsRequest, spansRequest } from './lib/proto.mjs';

let c;

function config(ports, dir) {
  const file = (name) => `    path: ${path.join(dir, `${name}.jsonl`)}\n    format: json\n`;
  return `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${ports.grpc}
      http:
        endpoint: 127.0.0.1:${ports.http}
processors:
  batch:
    timeout: 100ms
  batch/2:
    timeout: 100ms
exporters:
  file/a:
${file('a')}  file/b:
${file('b')}  file/c:
${file('c')}service:
  telemetry:
    metrics:
      address: 127.0.0.1:${ports.metrics}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file/a, file/b]
    traces/2:
      receivers: [otlp]
      processors: [batch/2]
      exporters: [file/c]
    logs:
      receivers: [otlp]
      exporters: [file/c]
`;
}

// The OTLP JSON requests in one file exporter's output (complete lines only).
function readLines(name) {
  const file = path.join(c.dir, `${name}.jsonl`);
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l));
}

before(async () => {
  c = await startCollector({ configText: config });
});

after(async () => {
  await c?.cleanup();
});

test('one receiver feeds two pipelines; a pipeline fans out to two exporters', async () => {
  const proto = { 'content-type': 'application/x-protobuf' };
  let r = await httpRequest(`${c.httpUrl}/v1/traces`, { headers: proto, body: spansRequest('fan', 30) });
  assert.equal(r.status, 200);
  r = await httpRequest(`${c.httpUrl}/v1/logs`, { headers: proto, body: logsRequest('fan', 5) });
  assert.equal(r.status, 200);

  const spansOf = (name) => flattenSpans(readLines(name).filter((q) => q.resourceSpans));
  const a = await c.waitFor(() => spansOf('a'), 30, { what: 'spans at file/a' });
  const b = await c.waitFor(() => spansOf('b'), 30, { what: 'spans at file/b' });
  const cs = await c.waitFor(() => spansOf('c'), 30, { what: 'spans at file/c' });
  const cl = await c.waitFor(() => flattenLogs(readLines('c').filter((q) => q.resourceLogs)), 5, {
    what: 'log records at file/c',
  });
  const names = (spans) => spans.map((s) => s.name).sort();
  const want = Array.from({ length: 30 }, (_, i) => `fan-${i}`).sort();
  assert.deepEqual(names(a), want);
  assert.deepEqual(names(b), want);
  assert.deepEqual(names(cs), want);
  assert.equal(cl.length, 5);

  // Counted once at the receiver, once per processor instance, once per exporter.
  const { samples } = await c.scrape();
  const v = (name, labels) => metricValue(samples, name, labels);
  assert.equal(v('otelcol_receiver_accepted_spans', { receiver: 'otlp', transport: 'http' }), 30);
  assert.equal(v('otelcol_receiver_accepted_log_records', { receiver: 'otlp', transport: 'http' }), 5);
  assert.equal(v('otelcol_processor_incoming_items', { processor: 'batch', otel_signal: 'traces' }), 30);
  assert.equal(v('otelcol_processor_incoming_items', { processor: 'batch/2', otel_signal: 'traces' }), 30);
  assert.equal(v('otelcol_exporter_sent_spans', { exporter: 'file/a' }), 30);
  assert.equal(v('otelcol_exporter_sent_spans', { exporter: 'file/b' }), 30);
  assert.equal(v('otelcol_exporter_sent_spans', { exporter: 'file/c' }), 30);
  assert.equal(v('otelcol_exporter_sent_log_records', { exporter: 'file/c' }), 5);
});

test('a signal that no pipeline takes is not served', async () => {
  const r = await httpRequest(`${c.httpUrl}/v1/metrics`, {
    headers: { 'content-type': 'application/x-protobuf' },
    body: Buffer.alloc(0),
  });
  assert.equal(r.status, 404);
});
