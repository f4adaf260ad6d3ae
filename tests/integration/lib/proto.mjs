// A tiny protobuf writer for hand-made OTLP requests. The bad-input tests need bytes that no SDK
// would produce (truncated messages, 10,000 levels of nesting), and the lifecycle test needs
// requests whose exact item counts it controls, so they build the wire form themselves. Field
// numbers are those of proto/opentelemetry/proto/**.proto.

const WT_VARINT = 0;
const WT_I64 = 1;
const WT_LEN = 2;

export function varint(n) {
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n; // int64 negatives are ten-byte varints
  const out = [];
  while (v > 0x7fn) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

function tag(field, wt) {
  return varint((field << 3) | wt);
}

export function fieldVarint(field, n) {
  return Buffer.concat([tag(field, WT_VARINT), varint(n)]);
}

export function fieldBytes(field, bytes) {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  return Buffer.concat([tag(field, WT_LEN), varint(b.length), b]);
}

export function fieldString(field, s) {
  return fieldBytes(field, Buffer.from(s, 'utf8'));
}

export function fieldFixed64(field, n) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return Buffer.concat([tag(field, WT_I64), b]);
}

export function fieldDouble(field, d) {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(d);
  return Buffer.concat([tag(field, WT_I64), b]);
}

export function fieldMessage(field, parts) {
  return fieldBytes(field, Buffer.concat(parts));
}

// common.v1.AnyValue from a JS value: string, boolean, integer (number or bigint), non-integer
// number (double), Buffer (bytes), array (array_value).
export function anyValue(v) {
  if (typeof v === 'string') return fieldString(1, v);
  if (typeof v === 'boolean') return fieldVarint(2, v ? 1 : 0);
  if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) return fieldVarint(3, v);
  if (typeof v === 'number') return fieldDouble(4, v);
  if (Buffer.isBuffer(v)) return fieldBytes(7, v);
  if (Array.isArray(v)) return fieldMessage(5, v.map((x) => fieldMessage(1, [anyValue(x)])));
  throw new Error(`anyValue: unsupported ${typeof v}`);
}

export function keyValue(field, key, value) {
  return fieldMessage(field, [fieldString(1, key), fieldMessage(2, [anyValue(value)])]);
}

function attrs(field, obj = {}) {
  return Object.entries(obj).map(([k, v]) => keyValue(field, k, v));
}

// An AnyValue nested `depth` array levels deep around a string, built from the inside out in
// linear time (each level is a length prefix that only depends on the size of what it wraps).
export function deepAnyValue(depth) {
  const inner = fieldString(1, 'bottom');
  const prefixes = [];
  let size = inner.length;
  for (let i = 0; i < depth; i++) {
    // ArrayValue { values = 1 } wrapping the AnyValue below it.
    const arrHead = Buffer.concat([tag(1, WT_LEN), varint(size)]);
    const arrSize = arrHead.length + size;
    // AnyValue { array_value = 5 } wrapping that ArrayValue.
    const anyHead = Buffer.concat([tag(5, WT_LEN), varint(arrSize)]);
    prefixes.push(Buffer.concat([anyHead, arrHead]));
    size = anyHead.length + arrSize;
  }
  prefixes.reverse();
  return Buffer.concat([...prefixes, inner]);
}

export function randomId(bytes) {
  const b = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) b[i] = Math.floor(Math.random() * 256);
  if (b.every((x) => x === 0)) b[0] = 1;
  return b;
}

const NOW_NS = () => BigInt(Date.now()) * 1000000n;

// collector.trace.v1.ExportTraceServiceRequest with one resource and one scope holding the
// given spans: [{name, attributes, traceId, spanId, parentSpanId, rawAttributes: [Buffer]}].
export function traceRequest({ resource = {}, scope = 'otelc-test', spans }) {
  const now = NOW_NS();
  const spanMsgs = spans.map((s) =>
    fieldMessage(2, [
      fieldBytes(1, s.traceId ?? randomId(16)),
      fieldBytes(2, s.spanId ?? randomId(8)),
      ...(s.parentSpanId ? [fieldBytes(4, s.parentSpanId)] : []),
      fieldString(5, s.name),
      fieldVarint(6, s.kind ?? 1),
      fieldFixed64(7, now - 1000000n),
      fieldFixed64(8, now),
      ...attrs(9, s.attributes),
      ...(s.rawAttributes ?? []),
    ]),
  );
  const rs = fieldMessage(1, [
    fieldMessage(1, attrs(1, resource)),
    fieldMessage(2, [fieldMessage(1, [fieldString(1, scope)]), ...spanMsgs]),
  ]);
  return rs;
}

// Convenience: n spans named `${prefix}-${i}` in one request.
export function spansRequest(prefix, n, resource = { 'service.name': 'otelc-raw' }) {
  const spans = [];
  for (let i = 0; i < n; i++) spans.push({ name: `${prefix}-${i}`, attributes: { index: i } });
  return traceRequest({ resource, spans });
}

// collector.metrics.v1.ExportMetricsServiceRequest with one gauge of n int data points.
export function gaugeRequest(name, n, resource = { 'service.name': 'otelc-raw' }) {
  const now = NOW_NS();
  const points = [];
  for (let i = 0; i < n; i++) {
    points.push(
      fieldMessage(1, [fieldFixed64(3, now), keyValue(7, 'index', i), fieldSfixed64(6, i)]),
    );
  }
  const metric = fieldMessage(2, [fieldString(1, name), fieldMessage(5, points)]);
  return fieldMessage(1, [
    fieldMessage(1, attrs(1, resource)),
    fieldMessage(2, [fieldMessage(1, [fieldString(1, 'otelc-test')]), metric]),
  ]);
}

// NumberDataPoint.as_int is sfixed64 (field 6, wire type 1).
function fieldSfixed64(field, n) {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(BigInt(n));
  return Buffer.concat([tag(field, WT_I64), b]);
}

// collector.logs.v1.ExportLogsServiceRequest with n records whose body is `${prefix}-${i}`.
export function logsRequest(prefix, n, resource = { 'service.name': 'otelc-raw' }) {
  const now = NOW_NS();
  const records = [];
  for (let i = 0; i < n; i++) {
    records.push(
      fieldMessage(2, [
        fieldFixed64(1, now),
        fieldVarint(2, 9),
        fieldString(3, 'INFO'),
        fieldMessage(5, [anyValue(`${prefix}-${i}`)]),
        keyValue(6, 'index', i),
      ]),
    );
  }
  return fieldMessage(1, [
    fieldMessage(1, attrs(1, resource)),
    fieldMessage(2, [fieldMessage(1, [fieldString(1, 'otelc-test')]), ...records]),
  ]);
}

// A minimal protobuf reader, enough to decode google.rpc.Status and the Export responses.
export function decodeFields(buf) {
  const fields = [];
  let i = 0;
  const readVarint = () => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(readVarint());
    const field = key >> 3;
    const wt = key & 7;
    if (wt === WT_VARINT) fields.push({ field, value: readVarint() });
    else if (wt === WT_I64) {
      fields.push({ field, value: buf.subarray(i, i + 8) });
      i += 8;
    } else if (wt === WT_LEN) {
      const len = Number(readVarint());
      if (i + len > buf.length) throw new Error('truncated field');
      fields.push({ field, value: buf.subarray(i, i + len) });
      i += len;
    } else if (wt === 5) {
      fields.push({ field, value: buf.subarray(i, i + 4) });
      i += 4;
    } else throw new Error(`wire type ${wt}`);
  }
  return fields;
}

// google.rpc.Status { int32 code = 1; string message = 2; repeated Any details = 3; }
export function decodeStatus(buf) {
  const out = { code: 0, message: '', details: 0 };
  for (const f of decodeFields(buf)) {
    if (f.field === 1) out.code = Number(f.value);
    else if (f.field === 2) out.message = f.value.toString('utf8');
    else if (f.field === 3) out.details++;
  }
  return out;
}
