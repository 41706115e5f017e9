// The positive scenarios of ms_oom_scenario: each grows until the kernel's OOM killer ends it. A steady
// leak is paced to fill the limit in 26-36 s; a burst comes after ~20 s of a steady working set, so a
// recorder has history to compare it with. Which function allocates is the point: the tests look for
// these names in stacks.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oom_scenario.h"

static struct block* g_leaked;  // leaked blocks stay reachable, as in a registry nobody prunes

// Seconds a steady leak takes to fill the limit.
static double fill_seconds(struct ctx* c) { return around(c, 31, 0.15); }

// Calls step() until the kernel kills us, paced so that the bytes it returns come at `rate` bytes/s.
static void grow_until_killed(struct ctx* c, const char* what, double rate, size_t (*step)(struct ctx*)) {
  phase(what);
  struct pacer pace = pacer_start(rate);
  for (;;) {
    size_t n = step(c);
    progress(c, what, pace.done);
    give_up_after(c, pace.done);
    pacer_wait(&pace, n);
  }
}

// The leaks' common end: p (n bytes, not NULL) is touched and kept for good. Returns n.
static size_t keep(void* p, size_t n) {
  touch(p, n);
  g_leaked = push(g_leaked, p, n);
  return n;
}

static size_t leak_size(struct ctx* c) { return between(c, 4 << 10, 64 << 10); }

KEEP static size_t leak_session_token(struct ctx* c) {
  size_t n = leak_size(c);
  return keep(checked(malloc(n), n), n);
}

static size_t leak_step(struct ctx* c) {
  size_t n = leak_session_token(c);
  if (uniform(c) < 0.7) handle_request(c);
  return n;
}

void run_leak(struct ctx* c) { grow_until_killed(c, "leak", (double)c->limit / fill_seconds(c), leak_step); }

KEEP static size_t leak_audit_record(struct ctx* c) {
  size_t n = leak_size(c);
  return keep(checked(malloc(n), n), n);
}

KEEP static struct block* fill_batch_buffers(struct ctx* c, struct block* batch, size_t* held, size_t due) {
  while (*held < due) {
    size_t n = between(c, 16 << 10, 256 << 10);
    void* p = checked(malloc(n), n);
    touch(p, n);
    batch = push(batch, p, n);
    *held += n;
  }
  return batch;
}

static void free_list(struct block* b) {
  while (b) {
    struct block* next = b->next;
    free(b);
    b = next;
  }
}

// A 4 s sawtooth (2 s filling a batch up to ~30% of the limit, 0.5 s holding it, all freed, 1.5 s
// empty) on top of a leak that fills the rest of the limit in ~31 s.
void run_sawtooth_leak(struct ctx* c) {
  phase("sawtooth_leak");
  const double period = 4, leak_rate = 0.7 * (double)c->limit / fill_seconds(c);
  size_t leaked = 0, batch_bytes = 0, batch_target = share(c, 0.3);
  struct block* batch = NULL;
  for (double t0 = now_s(), tick = t0;; tick += 0.02, sleep_until(tick)) {
    double t = now_s() - t0, pos = t - period * (double)(long)(t / period);
    while ((double)leaked < leak_rate * t) leaked += leak_audit_record(c);
    if (pos < 2) {
      batch = fill_batch_buffers(c, batch, &batch_bytes, (size_t)((double)batch_target * pos / 2));
    } else if (pos >= 2.5 && batch) {
      free_list(batch);
      batch = NULL;
      batch_bytes = 0;
      batch_target = share(c, 0.3);
    }
    progress(c, "leaked", leaked);
    give_up_after(c, leaked);
  }
}

KEEP void* xmalloc(size_t n) {
  void* p = malloc(n);
  return checked(p, n);
}

KEEP static size_t leaky_caller(struct ctx* c) {
  size_t n = leak_size(c);
  return keep(xmalloc(n), n);
}

KEEP static void ok_caller(struct ctx* c) {
  size_t n = leak_size(c);
  use_and_free(xmalloc(n), n, 0);
}

// ok_caller makes twice the calls, leaky_caller holds all the growth.
static size_t xmalloc_step(struct ctx* c) {
  size_t n = leaky_caller(c);
  ok_caller(c);
  ok_caller(c);
  return n;
}

void run_xmalloc_leak(struct ctx* c) {
  grow_until_killed(c, "xmalloc_leak", (double)c->limit / fill_seconds(c), xmalloc_step);
}

// ~20 s of a steady working set (`fraction` of the limit, ±20%), then burst(), which the kernel's OOM
// killer should end: it returns only after 4x the limit (or at once, for one huge malloc).
static void steady_then_burst(struct ctx* c, double fraction, void* (*burst)(struct ctx*)) {
  struct block* set = steady_phase(c, fraction, 20);
  phase("burst");
  escape(burst(c));
  escape(set);
  give_up_after(c, SIZE_MAX);
}

KEEP static void* load_whole_file(struct ctx* c) {
  const size_t n = share(c, 2.0);
  printf("huge_alloc %zu\n", n);
  void* p = checked(malloc(n), n);
  touch(p, n);
  return p;
}

void run_huge(struct ctx* c) { steady_then_burst(c, 0.3, load_whole_file); }

struct node {
  struct node* next;
  unsigned char data[];
};

// Reads a "huge input" (made up here) into a linked list of 64-256 byte nodes as fast as it can.
KEEP static void* parse_input_nodes(struct ctx* c) {
  struct node* head = NULL;
  for (size_t bytes = 0; bytes < 4 * c->limit;) {
    size_t n = between(c, 64, 256);
    struct node* node = checked(malloc(n), n);
    memset(node->data, (int)(bytes & 0xFF), n - sizeof *node);
    node->next = head;
    head = node;
    bytes += n;
    if ((bytes & ((8 << 20) - 1)) < 256) progress(c, "nodes", bytes);
  }
  return head;
}

void run_burst_nodes(struct ctx* c) { steady_then_burst(c, 0.25, parse_input_nodes); }

// Appends 256 KiB chunks of input to a buffer whose capacity doubles by realloc when full.
KEEP static void* grow_buffer(struct ctx* c) {
  size_t cap = 1 << 20, len = 0;
  const size_t chunk = 256 << 10;
  unsigned char* buf = checked(malloc(cap), cap);
  while (cap <= 4 * c->limit) {
    if (len + chunk > cap) {
      unsigned char* bigger = realloc(buf, 2 * cap);  // on failure buf is still ours: checked exits
      buf = checked(bigger, 2 * cap);
      cap *= 2;
      printf("capacity %zu\n", cap);
    }
    memset(buf + len, (int)(len >> 18), chunk);
    len += chunk;
  }
  return buf;
}

void run_realloc_doubling(struct ctx* c) { steady_then_burst(c, 0.2, grow_buffer); }

// 256 KiB per level, touched, then deeper; the only base case is past 4x the limit (not killed). The
// work after the call keeps it a real recursion.
KEEP static size_t descend(struct ctx* c, unsigned depth) {
  const size_t n = 256 << 10;
  unsigned char* p = checked(malloc(n), n);
  touch(p, n);
  if (depth % 64 == 0) printf("depth %u\n", depth);
  if ((size_t)depth * n > 4 * c->limit) return 0;
  size_t below = descend(c, depth + 1);
  p[below % n] ^= 1;
  return below + p[depth % n];
}

static void* start_descent(struct ctx* c) { return (void*)descend(c, 1); }

void run_recursion(struct ctx* c) { steady_then_burst(c, 0.2, start_descent); }

KEEP static struct block* hold_reference_data(struct ctx* c, size_t target) {
  struct block* set = NULL;
  for (size_t held = 0, n; held < target; held += n) {
    n = between(c, 256 << 10, 1 << 20);
    void* p = checked(malloc(n), n);
    touch(p, n);
    set = push(set, p, n);
  }
  return set;
}

KEEP static size_t sibling_leak(struct ctx* c) {
  size_t n = leak_size(c);
  return keep(checked(malloc(n), n), n);
}

static pid_t g_parent;

// The child leaks from nothing; it stops (exit 0) once its parent is gone.
static size_t sibling_step(struct ctx* c) {
  if (getppid() != g_parent) {
    printf("parent_gone\n");
    exit(0);
  }
  return sibling_leak(c);
}

// The parent holds ~60% (±10%, so it stays the larger of the two) flat; the kernel must pick it.
// Fork first: pages the child shared with its parent would count in the child's rss too.
void run_others(struct ctx* c) {
  const double fill = fill_seconds(c);
  const size_t hold = (size_t)(around(c, 0.6, 0.1) * (double)c->limit);
  g_parent = getpid();
  pid_t child = fork();
  if (child < 0) {
    perror("ms_oom_scenario: fork");
    exit(1);
  }
  if (child == 0) grow_until_killed(c, "sibling_leak", 0.4 * (double)c->limit / fill, sibling_step);
  printf("child %ld\n", (long)child);
  phase("hold");
  struct block* set = hold_reference_data(c, hold);
  for (;;) {
    sleep_s(1);
    retouch(c, set);
    progress(c, "held", hold);
    int status;
    if (waitpid(child, &status, WNOHANG) == child) {
      printf("child_exited %s %d\n", WIFSIGNALED(status) ? "signal" : "status",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      exit(1);
    }
  }
}

static char g_spool[64];  // the /dev/shm file, removed on every exit we control
static int g_spool_fd = -1;
static unsigned char g_chunk[64 << 10];  // what is written: the heap stays small

static void remove_spool(void) { unlink(g_spool); }

static void remove_spool_and_quit(int sig) {
  unlink(g_spool);
  _exit(128 + sig);
}

KEEP static size_t append_spool_chunk(struct ctx* c) {
  const size_t n = sizeof g_chunk;
  g_chunk[between(c, 0, n - 1)] += 1;
  for (size_t done = 0; done < n;) {
    ssize_t w = write(g_spool_fd, g_chunk + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      printf("write_failed %s\n", strerror(w < 0 ? errno : EIO));
      exit(1);
    }
    done += (size_t)w;
  }
  return n;
}

// Writes /dev/shm/ms_oom_scenario.PID at a steady rate; the heap stays small.
void run_tmpfs(struct ctx* c) {
  snprintf(g_spool, sizeof g_spool, "/dev/shm/ms_oom_scenario.%ld", (long)getpid());
  g_spool_fd = open(g_spool, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (g_spool_fd < 0) {
    fprintf(stderr, "ms_oom_scenario: cannot create %s: %s\n", g_spool, strerror(errno));
    exit(1);
  }
  atexit(remove_spool);
  signal(SIGINT, remove_spool_and_quit);
  signal(SIGTERM, remove_spool_and_quit);
  printf("file %s\n", g_spool);
  memset(g_chunk, 0x5A, sizeof g_chunk);
  grow_until_killed(c, "tmpfs", (double)c->limit / fill_seconds(c), append_spool_chunk);
}

KEEP static size_t map_region(struct ctx* c) {
  size_t n = between(c, 1 << 20, 4 << 20) & ~(c->page - 1);
  void* p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  touch(checked(p == MAP_FAILED ? NULL : p, n), n);
  return n;
}

static size_t mmap_step(struct ctx* c) {
  size_t n = map_region(c);
  if (uniform(c) < 0.5) handle_request(c);
  return n;
}

void run_mmap_leak(struct ctx* c) {
  grow_until_killed(c, "mmap_leak", (double)c->limit / fill_seconds(c), mmap_step);
}

KEEP static void serve_peak_request(size_t n) {
  use_and_free(checked(malloc(n), n), n, 0.4);  // held while the request is served
}

// ~85% (±1%) held flat; each 0.5 s cycle a request holds 0..E of the limit for 0.4 s, where E rises
// slowly from 10% by 0.2 points a second (load heading for its daily peak): usage sits at 85-95% with
// peaks of one kind all along (no trend, no unusual jump), and after ~20 s one of them no longer fits.
void run_steady(struct ctx* c) {
  phase("steady");
  // A fixed threshold turns off glibc's adaptive one, which would keep freed peaks in the heap and
  // make when the limit is crossed depend on the allocator's history rather than on the load.
  mallopt(M_MMAP_THRESHOLD, 128 << 10);
  const size_t held = (size_t)(around(c, 0.85, 0.01) * (double)c->limit);
  struct block* set = build_set(c, held);
  const double t0 = now_s();
  for (double next_touch = t0 + 1;; sleep_s(0.1)) {
    double t = now_s() - t0, peak = 0.10 + 0.002 * t;
    serve_peak_request((size_t)(uniform(c) * (peak < 0.3 ? peak : 0.3) * (double)c->limit) + c->page);
    if (now_s() >= next_touch) {
      retouch(c, set);
      next_touch += 1;
    }
    progress(c, "working_set", held);
    give_up_after(c, 0);
  }
}
