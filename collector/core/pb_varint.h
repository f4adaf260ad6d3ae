/* Protobuf base-128 varints, for the places that write protobuf wire bytes themselves (the JSON
 * transcoder, the wire splitter, the Loki and remote-write encoders) where protobuf-c's generic
 * size and pack passes cost more than the work around them. */
#ifndef OTC_PB_VARINT_H
#define OTC_PB_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* The bytes v takes as a varint (1 to 10). */
static inline size_t otc_varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* Writes v at p, which has room for otc_varint_size(v) bytes; returns the end of what it wrote. */
static inline uint8_t *otc_put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* As otc_put_varint, returning the number of bytes written. */
static inline size_t otc_put_varint_n(uint8_t *p, uint64_t v) {
  return (size_t)(otc_put_varint(p, v) - p);
}

/* The size of a length-delimited field of n bytes whose tag takes one byte (field numbers below
 * 16). */
static inline size_t otc_ld_size(size_t n) {
  return 1 + otc_varint_size(n) + n;
}

#endif
