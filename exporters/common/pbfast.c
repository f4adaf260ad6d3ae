/* A descriptor-driven protobuf decoder filling protobuf-c's structs (see pbfast.h).
 *
 * A message with repeated fields is read twice at its own level: a first pass counts the elements
 * of every repeated field (so arrays are allocated once, at their size); the second decodes,
 * recursing into nested messages. Field descriptors are found through
 * the descriptor's number ranges. Every length is checked
 * against the end of its enclosing message, so malformed input fails here and protobuf-c decides.
 */
#include "common/pbfast.h"

#include <stdbool.h>
#include <string.h>

/* Deeper than any valid OTLP request after the wire scan (AnyValue nesting is bounded by it). */
#define MAX_DEPTH 100
/* More fields than any OTLP or remote-write message has. */
#define MAX_FIELDS 64

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

static inline bool get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
  const uint8_t *p = *pp;
  /* Tags, small numbers and short lengths: one byte. */
  if (p < end && *p < 0x80) {
    *out = *p;
    *pp = p + 1;
    return true;
  }
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 70 && p < end; shift += 7) {
    uint8_t b = *p++;
    v |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 63);
    if (!(b & 0x80)) {
      *pp = p;
      *out = v;
      return true;
    }
  }
  return false;
}

static uint64_t get_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

/* The wire type protobuf writes a field of type t with (unpacked). */
static int wire_type_of(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return WT_FIXED64;
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
    return WT_FIXED32;
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_BYTES:
  case PROTOBUF_C_TYPE_MESSAGE:
    return WT_LEN;
  default:
    return WT_VARINT;
  }
}

/* The size of one element of a repeated field of type t in its array. */
static size_t elt_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return 4;
  case PROTOBUF_C_TYPE_FLOAT:
    return sizeof(float);
  case PROTOBUF_C_TYPE_ENUM:
    return sizeof(int);
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return 8;
  case PROTOBUF_C_TYPE_DOUBLE:
    return sizeof(double);
  case PROTOBUF_C_TYPE_STRING:
    return sizeof(char *);
  case PROTOBUF_C_TYPE_BYTES:
    return sizeof(ProtobufCBinaryData);
  default:
    return sizeof(void *);
  }
}

/* Stores the scalar `raw` (a varint's value or the little-endian bits of a fixed field) at dst as
 * protobuf-c represents type t. */
static void put_scalar(ProtobufCType t, void *dst, uint64_t raw) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_FLOAT: {
    uint32_t v = (uint32_t)raw;
    memcpy(dst, &v, 4);
    break;
  }
  case PROTOBUF_C_TYPE_SINT32: {
    uint32_t u = (uint32_t)raw;
    int32_t v = (int32_t)(u >> 1) ^ -(int32_t)(u & 1);
    memcpy(dst, &v, 4);
    break;
  }
  case PROTOBUF_C_TYPE_ENUM: {
    int v = (int32_t)(uint32_t)raw;
    memcpy(dst, &v, sizeof v);
    break;
  }
  case PROTOBUF_C_TYPE_BOOL: {
    protobuf_c_boolean v = raw != 0;
    memcpy(dst, &v, sizeof v);
    break;
  }
  case PROTOBUF_C_TYPE_SINT64: {
    int64_t v = (int64_t)(raw >> 1) ^ -(int64_t)(raw & 1);
    memcpy(dst, &v, 8);
    break;
  }
  default: /* int64, uint64, fixed64, sfixed64, double */
    memcpy(dst, &raw, 8);
    break;
  }
}

/* Reads one unpacked scalar of wire type wt at *pp. */
static bool read_scalar(int wt, const uint8_t **pp, const uint8_t *end, uint64_t *raw) {
  if (wt == WT_VARINT)
    return get_varint(pp, end, raw);
  int n = wt == WT_FIXED64 ? 8 : 4;
  if (end - *pp < n)
    return false;
  *raw = get_le(*pp, n);
  *pp += n;
  return true;
}

/* The next field's header: number, wire type and, for WT_LEN, its payload. */
struct field {
  uint32_t id;
  int wt;
  const uint8_t *data; /* WT_LEN: the payload; else the value's encoding */
  size_t len;
};

/* Reads the field header at *pp and moves past the whole field. */
static bool next_field(const uint8_t **pp, const uint8_t *end, struct field *f) {
  uint64_t tag;
  if (!get_varint(pp, end, &tag) || tag >> 3 == 0 || tag >> 3 > UINT32_MAX)
    return false;
  f->id = (uint32_t)(tag >> 3);
  f->wt = (int)(tag & 7);
  f->data = *pp;
  uint64_t v;
  switch (f->wt) {
  case WT_VARINT:
    if (!get_varint(pp, end, &v))
      return false;
    f->len = (size_t)(*pp - f->data);
    return true;
  case WT_FIXED64:
  case WT_FIXED32: {
    size_t n = f->wt == WT_FIXED64 ? 8 : 4;
    if ((size_t)(end - *pp) < n)
      return false;
    *pp += n;
    f->len = n;
    return true;
  }
  case WT_LEN:
    if (!get_varint(pp, end, &v) || v > (uint64_t)(end - *pp))
      return false;
    f->data = *pp;
    f->len = (size_t)v;
    *pp += v;
    return true;
  default:
    return false; /* groups and reserved wire types */
  }
}

/* The index of field id in d, or -1: through the descriptor's ranges of consecutive numbers (its
 * fields are sorted by number; OTLP messages have one or two ranges). */
static int find_field(const ProtobufCMessageDescriptor *d, uint32_t id) {
  const ProtobufCIntRange *r = d->field_ranges;
  for (unsigned k = 0; k < d->n_field_ranges; k++) {
    uint32_t start = (uint32_t)r[k].start_value;
    /* The entry after the last range holds the field count as its orig_index. */
    uint32_t n = r[k + 1].orig_index - r[k].orig_index;
    if (id >= start && id - start < n)
      return (int)(r[k].orig_index + (id - start));
  }
  return -1;
}

/* Elements in a packed payload of type t, or -1 if it is malformed. */
static long packed_count(ProtobufCType t, const uint8_t *p, size_t len) {
  int wt = wire_type_of(t);
  if (wt == WT_FIXED64)
    return len % 8 ? -1 : (long)(len / 8);
  if (wt == WT_FIXED32)
    return len % 4 ? -1 : (long)(len / 4);
  long n = 0;
  for (size_t i = 0; i < len; i++)
    n += !(p[i] & 0x80);
  if (len && (p[len - 1] & 0x80))
    return -1;
  return n;
}

static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                                ProtobufCAllocator *a, int depth);

/* Decodes field f (descriptor fd) into message m; fill is the next free slot of a repeated one. */
static bool decode_field(ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd,
                         const struct field *f, size_t *fill, ProtobufCAllocator *a, int depth) {
  uint8_t *base = (uint8_t *)m;
  bool repeated = fd->label == PROTOBUF_C_LABEL_REPEATED;
  void *slot;
  if (repeated) {
    uint8_t *arr = *(uint8_t **)(base + fd->offset);
    slot = arr + *fill * elt_size(fd->type);
  } else {
    slot = base + fd->offset;
  }
  int wt = wire_type_of(fd->type);
  if (repeated && f->wt == WT_LEN && wt != WT_LEN) {
    /* Packed scalars. */
    const uint8_t *p = f->data, *end = f->data + f->len;
    size_t es = elt_size(fd->type);
    uint8_t *arr = *(uint8_t **)(base + fd->offset);
    while (p < end) {
      uint64_t raw;
      if (!read_scalar(wt, &p, end, &raw))
        return false;
      put_scalar(fd->type, arr + (*fill)++ * es, raw);
    }
    return true;
  }
  if (f->wt != wt)
    return false;
  switch (fd->type) {
  case PROTOBUF_C_TYPE_STRING: {
    char *s = a->alloc(a->allocator_data, f->len + 1);
    if (!s)
      return false;
    memcpy(s, f->data, f->len);
    s[f->len] = '\0';
    *(char **)slot = s;
    break;
  }
  case PROTOBUF_C_TYPE_BYTES: {
    ProtobufCBinaryData bd = {f->len, f->len ? (uint8_t *)f->data : NULL};
    memcpy(slot, &bd, sizeof bd);
    break;
  }
  case PROTOBUF_C_TYPE_MESSAGE: {
    /* A singular message seen before is protobuf-c's to merge. */
    if (!repeated && ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
                          ? *(uint32_t *)(base + fd->quantifier_offset) == fd->id
                          : *(ProtobufCMessage **)slot != NULL))
      return false;
    ProtobufCMessage *sub = decode(fd->descriptor, f->data, f->len, a, depth + 1);
    if (!sub)
      return false;
    *(ProtobufCMessage **)slot = sub;
    break;
  }
  default: {
    const uint8_t *p = f->data;
    uint64_t raw;
    if (!read_scalar(wt, &p, f->data + f->len, &raw))
      return false;
    put_scalar(fd->type, slot, raw);
    break;
  }
  }
  if (repeated) {
    (*fill)++;
  } else if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    *(uint32_t *)(base + fd->quantifier_offset) = fd->id;
  } else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->quantifier_offset) {
    *(protobuf_c_boolean *)(base + fd->quantifier_offset) = 1;
  }
  return true;
}

static ProtobufCMessage *decode(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                                ProtobufCAllocator *a, int depth) {
  if (depth > MAX_DEPTH || d->n_fields > MAX_FIELDS)
    return NULL;
  const uint8_t *end = buf + len;
  size_t count[MAX_FIELDS];
  bool any_repeated = false;
  for (unsigned i = 0; i < d->n_fields && !any_repeated; i++)
    any_repeated = d->fields[i].label == PROTOBUF_C_LABEL_REPEATED;
  if (any_repeated)
    memset(count, 0, d->n_fields * sizeof count[0]);
  /* Pass 1, for messages with repeated fields: their sizes. */
  for (const uint8_t *p = buf; any_repeated && p < end;) {
    struct field f;
    if (!next_field(&p, end, &f))
      return NULL;
    int i = find_field(d, f.id);
    if (i < 0)
      continue;
    const ProtobufCFieldDescriptor *fd = &d->fields[i];
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
      if (f.wt == WT_LEN && wire_type_of(fd->type) != WT_LEN) {
        long n = packed_count(fd->type, f.data, f.len);
        if (n < 0)
          return NULL;
        count[i] += (size_t)n;
      } else {
        count[i]++;
      }
    }
  }
  ProtobufCMessage *m = a->alloc(a->allocator_data, d->sizeof_message);
  if (!m)
    return NULL;
  d->message_init(m);
  uint8_t *base = (uint8_t *)m;
  for (unsigned i = 0; any_repeated && i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *fd = &d->fields[i];
    if (fd->label != PROTOBUF_C_LABEL_REPEATED || count[i] == 0)
      continue;
    void *arr = a->alloc(a->allocator_data, count[i] * elt_size(fd->type));
    if (!arr)
      return NULL;
    *(void **)(base + fd->offset) = arr;
    *(size_t *)(base + fd->quantifier_offset) = count[i];
    count[i] = 0; /* from here on: the next free slot */
  }
  /* Pass 2: the values. */
  for (const uint8_t *p = buf; p < end;) {
    struct field f;
    if (!next_field(&p, end, &f))
      return NULL;
    int i = find_field(d, f.id);
    if (i < 0)
      continue;
    /* count[i] is only read for repeated fields, which exist when any_repeated. */
    if (!decode_field(m, &d->fields[i], &f, &count[i], a, depth))
      return NULL;
  }
  return m;
}

ProtobufCMessage *otc_pb__unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                                 size_t len, ProtobufCAllocator *alloc) {
  static const uint8_t empty[1] = {0};
  return decode(d, len ? buf : empty, len, alloc, 0);
}
