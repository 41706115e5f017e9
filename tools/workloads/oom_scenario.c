// The helpers of ms_oom_scenario (see oom_scenario.h): clock, seeded random sizes, touching, pacing,
// progress lines, and the steady working set that precedes the bursts.
#define _GNU_SOURCE
#include "oom_scenario.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile unsigned char g_sink;  // where retouch() results go, so the writes stay

double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void sleep_until(double t) {
  struct timespec at = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR) {}
}

void sleep_s(double s) { sleep_until(now_s() + s); }

double uniform(struct ctx* c) {
  c->rng ^= c->rng >> 12;
  c->rng ^= c->rng << 25;
  c->rng ^= c->rng >> 27;
  return (double)((c->rng * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53;
}

double around(struct ctx* c, double x, double spread) { return x * (1 - spread + 2 * spread * uniform(c)); }

size_t between(struct ctx* c, size_t lo, size_t hi) {
  return lo + (size_t)(uniform(c) * (double)(hi - lo + 1));
}

size_t share(struct ctx* c, double fraction) { return (size_t)(around(c, fraction, 0.2) * (double)c->limit); }

void* checked(void* p, size_t size) {
  if (!p) {
    printf("alloc_failed %zu\n", size);
    exit(3);
  }
  return p;
}

void touch(void* p, size_t size) { memset(p, 0x5A, size); }

void retouch(struct ctx* c, struct block* list) {
  for (struct block* b = list; b; b = b->next)
    for (size_t i = sizeof *b; i < b->size; i += c->page) ((unsigned char*)b)[i] += 1;  // past the header
  g_sink = list ? ((unsigned char*)list)[list->size - 1] : 0;
}

void escape(void* p) { __asm__ volatile("" : : "r"(p) : "memory"); }

struct block* push(struct block* list, void* p, size_t size) {
  struct block* b = p;
  b->next = list;
  b->size = size;
  return b;
}

void phase(const char* name) { printf("phase %s\n", name); }

int g_quiet;

void progress(struct ctx* c, const char* what, size_t bytes) {
  double t = now_s();
  if (g_quiet || t < c->next_log) return;
  c->next_log = t + 1;
  printf("t=%.1f %s_mib=%.1f\n", t - c->start, what, (double)bytes / (1 << 20));
}

void give_up_after(struct ctx* c, size_t grown) {
  double t = now_s() - c->start;
  if (grown < 4 * c->limit && t < 180) return;
  printf("not_killed after %.1f s and %zu bytes of growth: is this process in a cgroup of %zu MiB?\n", t,
         grown, c->limit >> 20);
  exit(1);
}

struct pacer pacer_start(double rate) { return (struct pacer){now_s(), rate, 0}; }

void pacer_wait(struct pacer* p, size_t bytes) {
  p->done += bytes;
  sleep_until(p->start + (double)p->done / p->rate);
}

void use_and_free(void* p, size_t size, double seconds) {
  touch(p, size);
  if (seconds > 0) sleep_s(seconds);
  escape(p);
  free(p);
}

void handle_request(struct ctx* c) {
  size_t n = between(c, 1 << 10, 128 << 10);
  use_and_free(checked(malloc(n), n), n, 0);
}

KEEP static struct block* build_working_set(struct block* set, size_t n) {
  void* p = checked(malloc(n), n);
  touch(p, n);
  return push(set, p, n);
}

struct block* build_set(struct ctx* c, size_t target) {
  struct pacer pace = pacer_start((double)target / 2);  // built over 2 s: no jump at the start
  struct block* set = NULL;
  while (pace.done < target) {
    size_t n = between(c, 256 << 10, 1 << 20);
    set = build_working_set(set, n);
    pacer_wait(&pace, n);
  }
  return set;
}

struct block* steady_phase(struct ctx* c, double fraction, double seconds) {
  phase("steady");
  const size_t held = share(c, fraction);
  struct block* set = build_set(c, held);
  const double end = now_s() + around(c, seconds, 0.1);
  for (double next_touch = now_s() + 1; now_s() < end; sleep_s(0.1)) {
    handle_request(c);
    if (now_s() >= next_touch) {
      retouch(c, set);
      next_touch += 1;
    }
    progress(c, "working_set", held);
  }
  return set;
}
