/* W3C Trace Context (https://www.w3.org/TR/trace-context/): parsing and formatting traceparent,
 * carrying tracestate, and generating ids. */
#include "otel_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

uint64_t todo_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool todo_span_context_valid(const struct todo_span_context *ctx) {
  static const uint8_t zero[16];
  return ctx && memcmp(ctx->trace_id, zero, 16) != 0 && memcmp(ctx->span_id, zero, 8) != 0;
}

void todo_hex_encode(const uint8_t *bytes, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 0x0F];
  }
  out[2 * n] = '\0';
}

/* Lowercase hex only: the specification forbids uppercase in traceparent. */
static int hex_value(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  return -1;
}

static int hex_decode(const char *s, size_t n_bytes, uint8_t *out) {
  for (size_t i = 0; i < n_bytes; i++) {
    int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return -1;
    }
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

/* Keeps a tracestate header only when it is short enough and made of printable ASCII: it is
 * forwarded as is, so it must not smuggle control characters into our own headers or logs. */
static void copy_tracestate(const char *ts, struct todo_span_context *out) {
  out->trace_state[0] = '\0';
  if (!ts) {
    return;
  }
  size_t len = strlen(ts);
  if (len == 0 || len > TODO_TRACESTATE_MAX) {
    return;
  }
  for (size_t i = 0; i < len; i++) {
    if (ts[i] < 0x20 || ts[i] > 0x7E) {
      return;
    }
  }
  memcpy(out->trace_state, ts, len + 1);
}

int todo_traceparent_parse(const char *tp, const char *tracestate, struct todo_span_context *out) {
  uint8_t version;
  struct todo_span_context ctx;
  memset(&ctx, 0, sizeof(ctx));
  if (!tp) {
    return -1;
  }
  /* Leading and trailing whitespace is tolerated (optional whitespace in HTTP header values). */
  while (*tp == ' ' || *tp == '\t') {
    tp++;
  }
  size_t len = strlen(tp);
  while (len > 0 && (tp[len - 1] == ' ' || tp[len - 1] == '\t')) {
    len--;
  }
  if (len < TODO_TRACEPARENT_LEN) {
    return -1;
  }
  if (hex_decode(tp, 1, &version) != 0 || version == 0xFF) {
    return -1;
  }
  /* Version 00 is exactly 55 characters; a later version may append fields after a '-'. */
  if (version == 0 && len != TODO_TRACEPARENT_LEN) {
    return -1;
  }
  if (len > TODO_TRACEPARENT_LEN && tp[TODO_TRACEPARENT_LEN] != '-') {
    return -1;
  }
  if (tp[2] != '-' || tp[35] != '-' || tp[52] != '-') {
    return -1;
  }
  if (hex_decode(tp + 3, 16, ctx.trace_id) != 0 || hex_decode(tp + 36, 8, ctx.span_id) != 0 ||
      hex_decode(tp + 53, 1, &ctx.flags) != 0) {
    return -1;
  }
  if (!todo_span_context_valid(&ctx)) {
    return -1;
  }
  ctx.remote = true;
  copy_tracestate(tracestate, &ctx);
  *out = ctx;
  return 0;
}

void todo_traceparent_format(const struct todo_span_context *ctx,
                             char out[TODO_TRACEPARENT_LEN + 1]) {
  char trace[33], span[17];
  todo_hex_encode(ctx->trace_id, 16, trace);
  todo_hex_encode(ctx->span_id, 8, span);
  snprintf(out, TODO_TRACEPARENT_LEN + 1, "00-%s-%s-%02x", trace, span, ctx->flags);
}

/* xoshiro256** per thread, seeded from getrandom: ids need to be unique, not secret, and a system
 * call per span would cost more than the rest of the span. */
static _Thread_local uint64_t rng_state[4];
static _Thread_local bool rng_seeded;

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void) {
  if (!rng_seeded) {
    if (getrandom(rng_state, sizeof(rng_state), 0) != (ssize_t)sizeof(rng_state)) {
      /* Without getrandom, time and the state's address still differ between threads. */
      rng_state[0] = todo_now_ns();
      rng_state[1] = (uint64_t)(uintptr_t)&rng_state;
      rng_state[2] = 0x9E3779B97F4A7C15u;
      rng_state[3] = 0xD1B54A32D192ED03u;
    }
    rng_seeded = true;
  }
  uint64_t *s = rng_state;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

void todo_tel__random_id(uint8_t *out, size_t n) {
  bool nonzero = false;
  while (!nonzero) {
    for (size_t i = 0; i < n; i += 8) {
      uint64_t r = rng_next();
      size_t k = n - i < 8 ? n - i : 8;
      memcpy(out + i, &r, k);
    }
    for (size_t i = 0; i < n; i++) {
      nonzero |= out[i] != 0;
    }
  }
}
