// ms_workload: a test target for memsight whose allocation truth is known exactly.
// Every byte it allocates comes from a named noinline function, and at the end it
// prints one JSON line saying what is still outstanding per function. Bookkeeping
// lives in static arrays and stdout uses a static buffer, so the program makes no
// heap allocations apart from the ones it reports. Sizes are in bytes.
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "workload_args.h"

#include "keep.h"

#define PRE_SIZE 256          // bytes per --pre block
#define PRE_MAX (1u << 16)    // limits that let the bookkeeping stay in static arrays
#define CACHE_MAX (1u << 16)
#define THREADS_MAX 64
#define THREAD_STACK (256u * 1024u)  // our own stacks: pthread_create then does no mmap
#define GROW_START 64         // grow_buffer: 64 bytes doubled 8 times = 16384 bytes
#define GROW_STEPS 8
#define MAP_PAGES 3           // leak_mapping: 3 anonymous pages

static volatile unsigned g_sum;          // results of touching memory go here, so
static void *volatile g_sink;            // the compiler cannot drop any malloc/free
static volatile size_t g_huge = SIZE_MAX / 2;  // volatile: realloc size unknown at compile time
static void *volatile g_null;           // NULL that GCC cannot see: keeps free(NULL) and
                                        // realloc(NULL, n) as real calls (not dropped / turned into malloc)
static char g_outbuf[8192];              // stdout buffer (stdio would otherwise malloc one)
static void *g_pre[PRE_MAX];
static unsigned char *g_cache[CACHE_MAX];  // FIFO ring of cache entries
static size_t g_cache_head, g_cache_len, g_cache_cap;
static _Alignas(4096) unsigned char g_stacks[THREADS_MAX][THREAD_STACK];
static pthread_barrier_t g_barrier;      // releases all workers together so they race

static void die(const char *what) { fprintf(stderr, "ms_workload: %s: %s\n", what, strerror(errno)); exit(1); }

// Blocks until one byte or EOF arrives on stdin: the handshake with the test.
static void wait_stdin(void) {
  char c;
  while (read(0, &c, 1) < 0 && errno == EINTR) {}
}

KEEP static void *leak_block(size_t size) {
  unsigned char *p = malloc(size);
  if (!p) die("malloc");
  memset(p, 0xA5, size);  // touch the block; code after malloc means no tail call
  g_sum += p[size - 1];
  return p;
}

KEEP static void run_leaks(uint64_t n, size_t size) {
  for (uint64_t i = 0; i < n; i++) g_sum += *(unsigned char *)leak_block(size);  // pointer dropped: leaked
}

KEEP static void *leak_calloc(size_t size) {
  unsigned char *p = calloc(2, size);  // nmemb=2 so a tracer must multiply: 2*size bytes
  if (!p) die("calloc");
  g_sum += p[2 * size - 1];
  p[0] = 1;
  return p;
}

KEEP static void *leak_mapping(size_t page) {
  unsigned char *p = mmap(NULL, MAP_PAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  for (size_t i = 0; i < MAP_PAGES; i++) p[i * page] = (unsigned char)i;  // fault every page in
  g_sum += p[0];
  return p;
}

KEEP static void *grow_buffer(void) {
  size_t n = GROW_START;
  unsigned char *p = malloc(n);
  if (!p) die("malloc");
  memset(p, 1, n);
  for (int i = 0; i < GROW_STEPS; i++) {  // each realloc may move the block
    unsigned char *q = realloc(p, 2 * n);
    if (!q) die("realloc");
    memset(q + n, i, n);
    p = q;
    n *= 2;
  }
  g_sum += p[n - 1];
  return p;  // the final GROW_START << GROW_STEPS bytes leak
}

KEEP static void churn_once(size_t size) {
  unsigned char *p = malloc(size);
  if (!p) die("malloc");
  memset(p, 3, size);
  g_sink = p;  // the pointer escapes, so GCC cannot fold malloc+free away
  free(p);
  g_sum++;     // free is not in tail position either
}

KEEP static void run_churn(uint64_t n, size_t size) {
  for (uint64_t i = 0; i < n; i++) churn_once(size);
}

// Allocator corner cases that must all net to zero outstanding.
KEEP static int churn_edges(size_t size) {
  unsigned char *p = realloc(g_null, size);  // realloc(NULL, n): same as malloc(n)
  if (!p) die("realloc(NULL)");
  memset(p, 4, size);
  g_sink = p;
  void *q = realloc(p, 0);  // glibc frees p and returns NULL
  if (q) free(q);           // other allocators may hand back a minimal block
  free(g_null);             // free(NULL): must be a no-op for the tracer
  p = malloc(size);
  if (!p) die("malloc");
  memset(p, 5, size);
  q = realloc(p, g_huge);   // SIZE_MAX/2 bytes: fails, p stays valid
  int failed = (q == NULL);
  free(q ? q : (void *)p);
  g_sum++;
  return failed;
}

KEEP static void cache_insert(size_t size, unsigned key) {
  unsigned char *p = malloc(size);
  if (!p) die("malloc");
  memset(p, (int)key, size);
  if (g_cache_len == g_cache_cap) {  // full: evict (free) the oldest entry
    free(g_cache[g_cache_head]);
    g_cache_head = (g_cache_head + 1) % g_cache_cap;
    g_cache_len--;
  }
  g_cache[(g_cache_head + g_cache_len) % g_cache_cap] = p;  // still reachable at exit
  g_cache_len++;
}

KEEP static void *pre_block(void) {
  unsigned char *p = malloc(PRE_SIZE);
  if (!p) die("malloc");
  memset(p, 6, PRE_SIZE);
  g_sum += p[0];
  return p;
}

struct worker { uint64_t leak_n, churn_n; size_t leak_s, churn_s; };

KEEP static void *worker_main(void *arg) {
  const struct worker *w = arg;
  pthread_barrier_wait(&g_barrier);
  run_leaks(w->leak_n, w->leak_s);
  run_churn(w->churn_n, w->churn_s);
  g_sum++;
  return NULL;
}

// Splits n over t threads, the first n%t threads taking one extra.
static uint64_t share(uint64_t n, unsigned t, unsigned i) { return n / t + (i < n % t); }

KEEP static void run_threads(unsigned t, uint64_t leak_n, size_t leak_s, uint64_t churn_n, size_t churn_s) {
  static pthread_t tid[THREADS_MAX];
  static struct worker w[THREADS_MAX];
  if (pthread_barrier_init(&g_barrier, NULL, t)) die("pthread_barrier_init");
  for (unsigned i = 0; i < t; i++) {
    pthread_attr_t attr;
    w[i] = (struct worker){share(leak_n, t, i), share(churn_n, t, i), leak_s, churn_s};
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, g_stacks[i], THREAD_STACK);
    if ((errno = pthread_create(&tid[i], &attr, worker_main, &w[i]))) die("pthread_create");
    pthread_attr_destroy(&attr);
  }
  for (unsigned i = 0; i < t; i++) pthread_join(tid[i], NULL);
  pthread_barrier_destroy(&g_barrier);
}

static void kv(const char *key, uint64_t v) { printf("\"%s\": %llu, ", key, (unsigned long long)v); }
static void fn(const char *name, uint64_t bytes, uint64_t allocs, const char *sep) {
  printf("\"%s\": {\"bytes\": %llu, \"allocs\": %llu}%s", name, (unsigned long long)bytes, (unsigned long long)allocs, sep);
}

static void usage(void) {
  fprintf(stderr, "usage: ms_workload [--leak N] [--leak-size S] [--churn N] [--churn-size S] [--cache K]\n"
                  "                   [--cache-inserts N] [--cache-size S] [--threads T] [--pre N] [--sync]\n"
                  "                   [--seconds N]   spread the leak, churn and cache work over N seconds\n");
  exit(2);
}

static uint64_t num(const char *s, uint64_t lo, uint64_t hi) { return parse_num(s, lo, hi, usage); }

int main(int argc, char **argv) {
  uint64_t leak_n = 0, churn_n = 0, cache_k = 0, cache_n = 0, pre_n = 0, threads = 0, sync = 0, seconds = 0;
  uint64_t leak_s = 1024, churn_s = 512, cache_s = 2048;
  int have_inserts = 0;
  const uint64_t big = 1ull << 40;  // per-value limit; products are checked below
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--sync")) { sync = 1; continue; }
    if (!v) usage();
    i++;
    if (!strcmp(a, "--leak")) leak_n = num(v, 0, big);
    else if (!strcmp(a, "--leak-size")) leak_s = num(v, 1, big);
    else if (!strcmp(a, "--churn")) churn_n = num(v, 0, big);
    else if (!strcmp(a, "--churn-size")) churn_s = num(v, 1, big);
    else if (!strcmp(a, "--cache")) cache_k = num(v, 0, CACHE_MAX);
    else if (!strcmp(a, "--cache-inserts")) { cache_n = num(v, 0, big); have_inserts = 1; }
    else if (!strcmp(a, "--cache-size")) cache_s = num(v, 1, big);
    else if (!strcmp(a, "--threads")) threads = num(v, 0, THREADS_MAX);
    else if (!strcmp(a, "--pre")) pre_n = num(v, 0, PRE_MAX);
    else if (!strcmp(a, "--seconds")) seconds = num(v, 0, 3600);
    else usage();
  }
  if (!have_inserts) cache_n = 2 * cache_k;  // default: every entry gets evicted once
  if (cache_k == 0) cache_n = 0;
  const uint64_t calloc_n = leak_n / 4, page = (uint64_t)sysconf(_SC_PAGESIZE);
  const uint64_t cache_live = cache_n < cache_k ? cache_n : cache_k;
  uint64_t lb, cb, kb, tb;  // leak_block, leak_calloc, cache and churn-total bytes
  if (__builtin_mul_overflow(leak_n, leak_s, &lb) || __builtin_mul_overflow(calloc_n, 2 * leak_s, &cb) ||
      __builtin_mul_overflow(cache_live, cache_s, &kb) || __builtin_mul_overflow(churn_n, churn_s, &tb))
    usage();
  setvbuf(stdout, g_outbuf, _IOFBF, sizeof g_outbuf);

  for (uint64_t i = 0; i < pre_n; i++) g_pre[i] = pre_block();  // live before the handshake
  if (sync) { printf("ready %ld\n", (long)getpid()); fflush(stdout); wait_stdin(); }
  for (uint64_t i = 0; i < pre_n; i++) free(g_pre[i]);  // unmatched frees for a late tracer

  // The churn phase's own time (single-threaded runs): benchmarks divide it by the pairs.
  struct timespec churn_start = {0, 0}, churn_end = {0, 0};
  // One arena for all threads: otherwise glibc mmaps a 64 MiB arena per thread,
  // and leak_mapping's 3 pages would not be the only mapping made after the handshake.
  if (threads) { mallopt(M_ARENA_MAX, 1); run_threads((unsigned)threads, leak_n, leak_s, churn_n, churn_s); }
  else if (!seconds) {
    run_leaks(leak_n, leak_s);
    clock_gettime(CLOCK_MONOTONIC, &churn_start);
    run_churn(churn_n, churn_s);
    clock_gettime(CLOCK_MONOTONIC, &churn_end);
  }
  const int leaking = leak_n > 0, churning = churn_n > 0;
  int huge_failed = 0;
  uint64_t gb = leaking ? (uint64_t)GROW_START << GROW_STEPS : 0, mb = leaking ? MAP_PAGES * page : 0;
  if (leaking) {
    for (uint64_t i = 0; i < calloc_n; i++) g_sum += *(unsigned char *)leak_calloc(leak_s);
    g_sum += *(unsigned char *)leak_mapping(page);
    g_sum += *(unsigned char *)grow_buffer();
  }
  if (churning) huge_failed = churn_edges(churn_s);
  g_cache_cap = cache_k;
  // --seconds (demos): the same work in one round per second; the totals, and so the truth, are unchanged.
  for (uint64_t r = 0; r < seconds && !threads; r++) {
    const struct timespec second = {1, 0};
    run_leaks(leak_n * (r + 1) / seconds - leak_n * r / seconds, leak_s);
    run_churn(churn_n * (r + 1) / seconds - churn_n * r / seconds, churn_s);
    for (uint64_t i = cache_n * r / seconds; i < cache_n * (r + 1) / seconds; i++) cache_insert(cache_s, (unsigned)i);
    nanosleep(&second, NULL);
  }
  for (uint64_t i = 0; i < cache_n && (!seconds || threads); i++) cache_insert(cache_s, (unsigned)i);

  const uint64_t leaked_b = lb + cb + gb, leaked_a = leak_n + calloc_n + (uint64_t)leaking;
  printf("{\"pid\": %ld, \"leak_function\": \"leak_block\", \"cache_function\": \"cache_insert\", "
         "\"churn_function\": \"churn_once\", \"pre_function\": \"pre_block\", \"churn_edge_cases\": %s, "
         "\"realloc_huge_failed\": %s, ", (long)getpid(), churning ? "true" : "false", huge_failed ? "true" : "false");
  kv("threads", threads); kv("page_size", page);
  kv("leaked_bytes", leaked_b); kv("leaked_allocs", leaked_a);  // heap only: valgrind "definitely lost"
  kv("leak_block_bytes", lb); kv("leak_block_allocs", leak_n);
  kv("leak_calloc_bytes", cb); kv("leak_calloc_allocs", calloc_n);
  kv("grow_buffer_bytes", gb); kv("grow_buffer_allocs", leaking); kv("grow_buffer_reallocs", leaking ? GROW_STEPS : 0);
  kv("leak_mapping_bytes", mb); kv("leak_mapping_maps", leaking);
  kv("cache_bytes", kb); kv("cache_allocs", cache_live);  // valgrind "still reachable"
  kv("cache_inserts", cache_n); kv("cache_evictions", cache_n - cache_live);
  kv("churn_pairs", churn_n); kv("churn_bytes_total", tb); kv("churn_outstanding", 0);
  kv("pre_freed", pre_n); kv("pre_bytes", pre_n * PRE_SIZE);
  kv("heap_outstanding_bytes", leaked_b + kb); kv("heap_outstanding_allocs", leaked_a + cache_live);
  kv("mmap_outstanding_bytes", mb);
  kv("churn_ns", (uint64_t)(churn_end.tv_sec - churn_start.tv_sec) * 1000000000ull + churn_end.tv_nsec - churn_start.tv_nsec);
  printf("\"functions\": {");  // outstanding at the end, per allocating function
  fn("leak_block", lb, leak_n, ", "); fn("leak_calloc", cb, calloc_n, ", "); fn("leak_mapping", mb, leaking, ", ");
  fn("grow_buffer", gb, leaking, ", "); fn("cache_insert", kb, cache_live, ", "); fn("churn_once", 0, 0, ", ");
  fn("pre_block", 0, 0, "}}\n");
  fflush(stdout);
  if (sync) wait_stdin();  // stay alive so the tracer can take its final snapshot
  return 0;
}
