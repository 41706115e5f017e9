// ms_burst: more allocator calls than a tracer can take, then a slow leak it must see exactly.
//
//   phase 1 (burst): THREADS threads make malloc(SIZE)+free pairs for SECONDS, as fast as they can or at
//                    most RATE pairs per second in all; prints "burst PAIRS NS" (pairs made, time taken)
//   phase 2 (leak):  slow_leak() keeps N blocks of LEAK_SIZE bytes, one every EVERY_MS milliseconds, then
//                    prints one JSON truth line
// With --sync it prints "ready PID" first, and waits for a byte on stdin before each phase and after the
// truth line (so a tracer can read its numbers between phases and take its final snapshot). No other heap
// allocation happens after the handshake: stdout has a static buffer.
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "workload_args.h"

#include "keep.h"

#define THREADS_MAX 64
#define THREAD_STACK (256u * 1024u)  // our own stacks: pthread_create then does no mmap
#define BATCH 8                      // pairs between two looks at the clock (and sleeps, with --rate)

static void *volatile g_sink;  // keeps malloc+free from being folded away
static volatile unsigned g_sum;
static char g_outbuf[4096];
static _Alignas(4096) unsigned char g_stacks[THREADS_MAX][THREAD_STACK];
static pthread_barrier_t g_barrier;

struct worker {
  uint64_t end_ns;       // CLOCK_MONOTONIC deadline
  uint64_t batch_ns;     // time one batch may take at the asked rate (0: no limit)
  size_t size;
  uint64_t pairs;        // out: pairs made
};

static void die(const char *what) { fprintf(stderr, "ms_burst: %s: %s\n", what, strerror(errno)); exit(1); }

static void wait_stdin(void) {
  char c;
  while (read(0, &c, 1) < 0 && errno == EINTR) {}
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void sleep_until(uint64_t ns) {
  const struct timespec t = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {}
}

KEEP static void burst_pair(size_t size) {
  unsigned char *p = malloc(size);
  if (!p) die("malloc");
  p[0] = 1;
  g_sink = p;
  free(p);
  g_sum++;
}

KEEP static void *burst_worker(void *arg) {
  struct worker *w = arg;
  pthread_barrier_wait(&g_barrier);
  uint64_t next = now_ns();
  while (now_ns() < w->end_ns) {
    for (int i = 0; i < BATCH; i++) burst_pair(w->size);
    w->pairs += BATCH;
    if (w->batch_ns) sleep_until(next += w->batch_ns);
  }
  return NULL;
}

KEEP static void run_burst(unsigned threads, uint64_t seconds, uint64_t rate, size_t size) {
  static pthread_t tid[THREADS_MAX];
  static struct worker w[THREADS_MAX];
  if (pthread_barrier_init(&g_barrier, NULL, threads)) die("pthread_barrier_init");
  const uint64_t start = now_ns();
  for (unsigned i = 0; i < threads; i++) {
    pthread_attr_t attr;
    w[i] = (struct worker){start + seconds * 1000000000ull, rate ? BATCH * threads * 1000000000ull / rate : 0,
                           size, 0};
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, g_stacks[i], THREAD_STACK);
    if ((errno = pthread_create(&tid[i], &attr, burst_worker, &w[i]))) die("pthread_create");
    pthread_attr_destroy(&attr);
  }
  uint64_t pairs = 0;
  for (unsigned i = 0; i < threads; i++) {
    pthread_join(tid[i], NULL);
    pairs += w[i].pairs;
  }
  pthread_barrier_destroy(&g_barrier);
  printf("burst %llu %llu\n", (unsigned long long)pairs, (unsigned long long)(now_ns() - start));
}

KEEP static void *slow_leak(size_t size) {
  unsigned char *p = malloc(size);
  if (!p) die("malloc");
  memset(p, 0xA5, size);
  g_sum += p[size - 1];
  return p;  // kept: leaked
}

static void usage(void) {
  fprintf(stderr, "usage: ms_burst [--sync] [--threads T] [--seconds S] [--rate PAIRS_PER_S] [--size B]\n"
                  "                [--leak N] [--leak-size B] [--every-ms M]\n");
  exit(2);
}

static uint64_t num(const char *s, uint64_t lo, uint64_t hi) { return parse_num(s, lo, hi, usage); }

int main(int argc, char **argv) {
  uint64_t threads = 8, seconds = 5, rate = 0, size = 64, leak_n = 0, leak_s = 1000, every_ms = 50, sync = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--sync")) { sync = 1; continue; }
    if (!v) usage();
    i++;
    if (!strcmp(a, "--threads")) threads = num(v, 1, THREADS_MAX);
    else if (!strcmp(a, "--seconds")) seconds = num(v, 0, 3600);
    else if (!strcmp(a, "--rate")) rate = num(v, 0, 1ull << 32);
    else if (!strcmp(a, "--size")) size = num(v, 1, 1 << 20);
    else if (!strcmp(a, "--leak")) leak_n = num(v, 0, 1 << 20);
    else if (!strcmp(a, "--leak-size")) leak_s = num(v, 1, 1 << 20);
    else if (!strcmp(a, "--every-ms")) every_ms = num(v, 0, 60000);
    else usage();
  }
  setvbuf(stdout, g_outbuf, _IOFBF, sizeof g_outbuf);
  mallopt(M_ARENA_MAX, 1);  // no 64 MiB arena mmap per thread
  prctl(PR_SET_TIMERSLACK, 1000UL);  // --rate: sleeps of tens of microseconds end on time (default slack 50 us)
  if (sync) { printf("ready %ld\n", (long)getpid()); fflush(stdout); wait_stdin(); }
  if (seconds) run_burst((unsigned)threads, seconds, rate, (size_t)size);
  else printf("burst 0 0\n");  // the line a tracer's test waits for, even without a burst
  fflush(stdout);
  if (sync) wait_stdin();
  uint64_t next = now_ns();
  for (uint64_t i = 0; i < leak_n; i++) {
    g_sum += *(unsigned char *)slow_leak((size_t)leak_s);
    sleep_until(next += every_ms * 1000000ull);
  }
  printf("{\"pid\": %ld, \"leak_function\": \"slow_leak\", \"leak_bytes\": %llu, \"leak_allocs\": %llu}\n",
         (long)getpid(), (unsigned long long)(leak_n * leak_s), (unsigned long long)leak_n);
  fflush(stdout);
  if (sync) wait_stdin();
  return 0;
}
