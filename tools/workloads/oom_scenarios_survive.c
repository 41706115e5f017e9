// The negative scenarios of ms_oom_scenario: memory patterns that look alarming but are no leak and
// stay under the limit. Each runs c->seconds, frees what it holds and returns.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "oom_scenario.h"

// A FIFO of blocks: oldest first, new ones appended. An LRU cache without hits, a job queue.
struct fifo {
  struct block *oldest, *newest;
  size_t bytes;
};

static void append(struct fifo* q, struct block* b, size_t n) {
  b->next = NULL;
  b->size = n;
  if (q->newest) q->newest->next = b;
  else q->oldest = b;
  q->newest = b;
  q->bytes += n;
}

static struct block* pop(struct fifo* q) {
  struct block* b = q->oldest;
  q->oldest = b->next;
  if (!q->oldest) q->newest = NULL;
  q->bytes -= b->size;
  return b;
}

static void free_all(struct fifo* q) {
  while (q->oldest) free(pop(q));
}

KEEP static void cache_evict_oldest(struct fifo* cache) { free(pop(cache)); }

KEEP static void cache_insert(struct fifo* cache, size_t cap, size_t n) {
  struct block* b = checked(malloc(n), n);
  touch(b, n);
  append(cache, b, n);
  while (cache->bytes > cap) cache_evict_oldest(cache);
}

// Inserts at a rate that fills ~40% of the limit in ~12 s, then keeps inserting: the oldest go.
void run_lru(struct ctx* c) {
  phase("lru");
  const size_t cap = share(c, 0.4);
  const double end = now_s() + c->seconds;
  struct fifo cache = {0};
  struct pacer pace = pacer_start((double)cap / around(c, 12, 0.15));
  while (now_s() < end) {
    size_t n = between(c, 4 << 10, 64 << 10);
    cache_insert(&cache, cap, n);
    if (uniform(c) < 0.3) handle_request(c);
    progress(c, "cached", cache.bytes);
    pacer_wait(&pace, n);
  }
  free_all(&cache);
}

KEEP static size_t build_report_buffer(struct ctx* c) {
  size_t n = share(c, 0.3);
  use_and_free(checked(malloc(n), n), n, 0.3);  // the report is written out meanwhile
  return n;
}

// Each ~1 s cycle: a report buffer of ~30% of the limit, held 0.3 s and freed; churn in between.
void run_temp_buffer(struct ctx* c) {
  phase("temp_buffer");
  const double end = now_s() + c->seconds;
  while (now_s() < end) {
    size_t n = build_report_buffer(c);
    for (int i = 0; i < 7; i++, sleep_s(0.1)) handle_request(c);
    progress(c, "last_buffer", n);
  }
}

KEEP static size_t enqueue_job(struct ctx* c, struct fifo* queue) {
  size_t n = between(c, 4 << 10, 64 << 10);
  struct block* b = checked(malloc(n), n);
  touch(b, n);
  append(queue, b, n);
  return n;
}

KEEP static size_t process_job(struct fifo* queue) {
  struct block* b = pop(queue);
  size_t n = b->size;
  unsigned sum = 0;
  for (size_t i = sizeof *b; i < n; i += 512) sum += ((unsigned char*)b)[i];
  escape(&sum);
  free(b);
  return n;
}

// Bytes per second the producer makes at time t of T: the consumer's rate C, then rising for 45% of
// the run so the queue grows to `peak`, then below C for 35% of it so the queue drains.
static double producer_rate(double t, double T, double C, double peak) {
  const double rise = 0.45 * T, drain = 0.35 * T, d = 2 * peak / rise;
  if (t < 0.1 * T) return C;
  if (t < 0.1 * T + rise) return C + d * (t - 0.1 * T) / rise;
  if (t < 0.1 * T + rise + drain) return C - peak / drain > 0 ? C - peak / drain : 0;
  return C;
}

// A consumer that frees the oldest job at a fixed rate (5% of the limit per second) behind a producer
// that speeds up until the queue holds ~40% of the limit, then slows down.
void run_backlog(struct ctx* c) {
  phase("backlog");
  const double C = 0.05 * (double)c->limit, peak = (double)share(c, 0.4), dt = 0.02;
  struct fifo queue = {0};
  double produce = 0, consume = 0;
  for (double t0 = now_s(), tick = t0; tick - t0 < c->seconds; tick += dt, sleep_until(tick)) {
    for (produce += producer_rate(tick - t0, c->seconds, C, peak) * dt; produce > 0;)
      produce -= (double)enqueue_job(c, &queue);
    for (consume += C * dt; consume > 0 && queue.oldest;) consume -= (double)process_job(&queue);
    if (!queue.oldest && consume > 0) consume = 0;  // an idle consumer saves no credit
    progress(c, "queued", queue.bytes);
  }
  free_all(&queue);
}

KEEP static void* intern_small_string(struct ctx* c) {
  size_t n = between(c, 64, 512);
  struct block* b = checked(malloc(n), n);
  touch(b, n);
  b->size = n;
  return b;
}

// ~45% of the limit in 64-512 byte blocks over 5 s, every other one freed: the live heap halves, the
// resident heap does not. Then the live half is replaced piece by piece (flat) and touched.
void run_fragmentation(struct ctx* c) {
  phase("fragmentation");
  const size_t target = share(c, 0.45), slots = target / 64 + 1;
  const double end = now_s() + c->seconds;
  struct block** slot = checked(malloc(slots * sizeof *slot), slots * sizeof *slot);
  size_t count = 0, live = 0;
  struct pacer pace = pacer_start((double)target / 5);
  while (live < target && count < slots) {
    slot[count] = intern_small_string(c);
    live += slot[count]->size;
    if (count++ % 256 == 0) pacer_wait(&pace, live - pace.done);
  }
  phase("free_every_other");
  for (size_t i = 1; i < count; i += 2) {
    live -= slot[i]->size;
    free(slot[i]);
  }
  phase("flat");
  for (double next_touch = now_s() + 2; now_s() < end; sleep_s(0.1)) {
    for (int k = 0; k < 200; k++) {
      size_t i = between(c, 0, (count - 1) / 2) * 2;
      live -= slot[i]->size;
      free(slot[i]);
      slot[i] = intern_small_string(c);
      live += slot[i]->size;
    }
    if (now_s() >= next_touch) {
      for (size_t i = 0; i < count; i += 2) ((unsigned char*)slot[i])[sizeof(struct block)] += 1;
      next_touch += 2;
    }
    progress(c, "live", live);
  }
  for (size_t i = 0; i < count; i += 2) free(slot[i]);
  free(slot);
}
