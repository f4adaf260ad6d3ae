/* A faster protobuf-c unpack for the exporters that translate OTLP (loki, remote write): the same
 * structs as <message>__unpack fills, in one pass per message with exact-size arrays, from an
 * arena allocator. protobuf-c's generic unpack was a third of those exporters' instructions.
 *
 * It takes the common shapes only and gives up (returns NULL) on anything unusual: a singular
 * message field that occurs twice (protobuf merges those), groups, malformed or truncated bytes,
 * nesting deeper than a bound. The caller then unpacks with protobuf-c, so results never differ.
 * Unknown fields are skipped rather than kept (the translators never read them). */
#ifndef OTC_PBFAST_H
#define OTC_PBFAST_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes buf (len bytes) as a message of descriptor d, allocating from alloc, which must be an
 * arena: nothing is freed individually, the caller drops the arena to free the result (even after
 * a failure, which may leave allocations behind). Bytes fields point into buf, so buf must outlive
 * the result; strings are copied (NUL-terminated). Returns the message, or NULL to say "use
 * protobuf-c" (see above) or when the allocator fails. */
ProtobufCMessage *otc_pb__unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                                 size_t len, ProtobufCAllocator *alloc);

#endif
