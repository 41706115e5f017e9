// ms_bench_churn: the timed workload of tools/bench/run. Each thread does PAIRS of malloc(64) then free,
// timed with CLOCK_MONOTONIC around the loops only. Handshake: it prints `ready PID`, then waits for a
// byte on stdin, so a tracer can attach (and say so) before the clock starts; after the loops it prints
// `result {"pairs": N, "threads": T, "ns": WALL, "cpu_ns": CPU}` and exits. ns is wall time from the first
// thread's start (they start together, from a barrier) until the last one finishes; cpu_ns is the CPU
// time the threads spent in their loops, user and system: what the pairs cost, whatever else the machine
// runs meanwhile (wall time also counts waiting for a CPU). Before that, each thread does the same pairs
// untimed for WARM_MS milliseconds: a tracer's one-time costs (a new stack's first record, heaptrack's
// start-up stall while its interpreter starts) stay out of the per-pair figure. Usage: ms_bench_churn PAIRS
// [THREADS [WARM_MS]] (defaults 1 and 0).
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS_MAX 64
#define BLOCK_BYTES 64

static __thread void* volatile g_sink;  // the compiler must keep every malloc and free; per thread, so
                                        // threads share no cache line
static pthread_barrier_t g_start;
static uint64_t g_pairs;
static uint64_t g_warm_ns;

__attribute__((noinline)) static void pair_once(void) {
  void* p = malloc(BLOCK_BYTES);
  if (!p) abort();
  g_sink = p;
  free(p);
}

__attribute__((noinline)) static void churn(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) pair_once();
}

static uint64_t clock_ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static uint64_t now_ns(void) {
  return clock_ns(CLOCK_MONOTONIC);
}

static uint64_t cpu_ns(void) {
  return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static void warm_up(void) {
  const uint64_t until = now_ns() + g_warm_ns;
  do churn(1000);
  while (now_ns() < until);
}

struct span {
  uint64_t start, end;  // CLOCK_MONOTONIC ns around one thread's timed loop
  uint64_t cpu;         // the thread's CPU time in it, user and system (uprobe traps are system time), ns
};

static void* worker(void* arg) {
  struct span* t = arg;
  warm_up();  // also makes the thread's arena and tcache before the clock starts
  pthread_barrier_wait(&g_start);
  t->start = now_ns();
  const uint64_t cpu = cpu_ns();
  churn(g_pairs);
  t->cpu = cpu_ns() - cpu;
  t->end = now_ns();
  return NULL;
}

static uint64_t number(const char* s, uint64_t lo, uint64_t hi) {
  char* end;
  errno = 0;
  const unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || end == s || v < lo || v > hi) {
    fprintf(stderr, "ms_bench_churn: bad number %s (%llu..%llu)\n", s, (unsigned long long)lo,
            (unsigned long long)hi);
    exit(2);
  }
  return v;
}

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: ms_bench_churn PAIRS [THREADS [WARM_MS]]\n");
    return 2;
  }
  g_pairs = number(argv[1], 1, UINT64_MAX / 2);
  const unsigned threads = argc > 2 ? (unsigned)number(argv[2], 1, THREADS_MAX) : 1;
  g_warm_ns = argc > 3 ? number(argv[3], 0, 60000) * 1000000u : 0;
  pthread_t tids[THREADS_MAX];
  struct span spans[THREADS_MAX];
  pthread_barrier_init(&g_start, NULL, threads);
  pair_once();
  printf("ready %ld\n", (long)getpid());
  fflush(stdout);
  char c;
  while (read(0, &c, 1) < 0 && errno == EINTR) {
  }
  uint64_t start = 0, end = 0, cpu = 0;
  if (threads == 1) {
    warm_up();
    start = now_ns();
    cpu = cpu_ns();
    churn(g_pairs);
    cpu = cpu_ns() - cpu;
    end = now_ns();
  } else {
    // Each thread times itself (main may not be scheduled when they start): first start to last end.
    for (unsigned i = 0; i < threads; i++)
      if (pthread_create(&tids[i], NULL, worker, &spans[i])) abort();
    start = UINT64_MAX;
    for (unsigned i = 0; i < threads; i++) {
      pthread_join(tids[i], NULL);
      if (spans[i].start < start) start = spans[i].start;
      if (spans[i].end > end) end = spans[i].end;
      cpu += spans[i].cpu;
    }
  }
  printf("result {\"pairs\": %llu, \"threads\": %u, \"ns\": %llu, \"cpu_ns\": %llu}\n",
         (unsigned long long)g_pairs, threads, (unsigned long long)(end - start), (unsigned long long)cpu);
  fflush(stdout);
  return 0;
}
