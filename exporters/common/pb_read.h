/* Reading protobuf wire bytes one field at a time, for the translations that read OTLP straight
 * from the wire (Loki, remote write) instead of decoding it into protobuf-c structs. Every read is
 * checked against the end of its message, and malformed bytes make it return false. Varints are
 * read as pbfast reads them (up to ten bytes, bits past 64 dropped), so that every decoder of ours
 * sees the same numbers. */
#ifndef OTC_PB_READ_H
#define OTC_PB_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { OTC_WT_VARINT = 0, OTC_WT_FIXED64 = 1, OTC_WT_LEN = 2, OTC_WT_FIXED32 = 5 };

struct otc_pb_field {
  uint32_t num;
  const uint8_t *data; /* OTC_WT_LEN: the payload */
  size_t len;          /* OTC_WT_LEN: the payload's length */
  uint64_t v;          /* a varint's value, or a fixed field's little-endian bits; else 0 */
  /* Apart from num: stored together, the two were compared with one 8-byte load of two 4-byte
   * stores, which the CPU cannot forward (a stall that was a fifth of Loki's per-record time). */
  uint8_t wt;
};

/* A varint of more than one byte: out of line, as it is rare (long lengths, timestamps). */
static __attribute__((noinline, unused)) bool
otc_pb__varint_long(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
  const uint8_t *p = *pp;
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

/* Reads the varint at *pp (below end) and moves past it. */
static inline __attribute__((always_inline)) bool otc_pb_varint(const uint8_t **pp,
                                                                const uint8_t *end, uint64_t *out) {
  const uint8_t *p = *pp;
  if (p < end && *p < 0x80) {
    *out = *p;
    *pp = p + 1;
    return true;
  }
  return otc_pb__varint_long(pp, end, out);
}

/* Reads the field at *pp (below end) and moves past it; false for malformed bytes (a field number
 * of 0, a group or reserved wire type, anything running past end). */
static inline __attribute__((always_inline)) bool
otc_pb_next(const uint8_t **pp, const uint8_t *end, struct otc_pb_field *f) {
  const uint8_t *p = *pp;
  /* The usual field: a one-byte tag and a one-byte length (a key, a short string, a KeyValue). */
  if (end - p >= 2 && (p[0] & 7) == OTC_WT_LEN && p[0] >= 8 && p[0] < 0x80 && p[1] < 0x80 &&
      p[1] <= end - p - 2) {
    f->num = p[0] >> 3;
    f->wt = OTC_WT_LEN;
    f->v = 0;
    f->len = p[1];
    f->data = p + 2;
    *pp = p + 2 + f->len;
    return true;
  }
  /* A timestamp or a double: a one-byte tag and eight bytes. */
  if (end - p >= 9 && (p[0] & 7) == OTC_WT_FIXED64 && p[0] >= 8 && p[0] < 0x80) {
    f->num = p[0] >> 3;
    f->wt = OTC_WT_FIXED64;
    f->data = p + 1;
    f->len = 0;
    uint64_t x = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&x, p + 1, 8);
#else
    for (size_t i = 8; i-- > 0;)
      x = x << 8 | p[1 + i];
#endif
    f->v = x;
    *pp = p + 9;
    return true;
  }
  uint64_t tag, v;
  if (!otc_pb_varint(pp, end, &tag) || tag >> 3 == 0 || tag >> 3 > UINT32_MAX)
    return false;
  f->num = (uint32_t)(tag >> 3);
  f->wt = (uint8_t)(tag & 7);
  f->data = *pp;
  f->len = 0;
  f->v = 0;
  switch (f->wt) {
  case OTC_WT_VARINT:
    return otc_pb_varint(pp, end, &f->v);
  case OTC_WT_FIXED64:
  case OTC_WT_FIXED32: {
    size_t n = f->wt == OTC_WT_FIXED64 ? 8 : 4;
    if ((size_t)(end - *pp) < n)
      return false;
    uint64_t x = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(&x, *pp, n);
#else
    for (size_t i = n; i-- > 0;)
      x = x << 8 | (*pp)[i];
#endif
    f->v = x;
    *pp += n;
    return true;
  }
  case OTC_WT_LEN:
    if (!otc_pb_varint(pp, end, &v) || v > (uint64_t)(end - *pp))
      return false;
    f->data = *pp;
    f->len = (size_t)v;
    *pp += v;
    return true;
  default:
    return false;
  }
}

#endif
