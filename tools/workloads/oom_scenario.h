// Shared pieces of ms_oom_scenario: the run's context (limit, seeded random numbers, clock) and the
// helpers every scenario uses to allocate, touch, pace and give up. Sizes are in bytes, times in
// seconds (CLOCK_MONOTONIC).
#ifndef MS_OOM_SCENARIO_H
#define MS_OOM_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include "keep.h"

struct ctx {
  size_t limit;     // the cgroup's limit the sizes are fractions of (--limit-mib), bytes
  uint64_t rng;     // xorshift64* state, from --seed
  double seconds;   // how long a negative scenario runs (--seconds)
  double start;     // when the scenario began
  double next_log;  // when the next progress line is due
  size_t page;      // page size, bytes
};

// A block kept on a list by its first bytes, so nothing else has to be allocated to hold it.
struct block {
  struct block* next;
  size_t size;
};

double now_s(void);
void sleep_until(double t);
void sleep_s(double s);

double uniform(struct ctx* c);                        // in [0, 1)
double around(struct ctx* c, double x, double spread);  // x * (1 ± spread), uniformly
size_t between(struct ctx* c, size_t lo, size_t hi);  // in [lo, hi]
size_t share(struct ctx* c, double fraction);         // fraction of the limit, ±20%

void* checked(void* p, size_t size);  // p, or "alloc_failed SIZE" and exit 3 when it is NULL
void touch(void* p, size_t size);     // writes every byte: resident and charged to the cgroup
void retouch(struct ctx* c, struct block* list);  // writes one byte per page of every block
void escape(void* p);                 // the compiler must assume p is used: no malloc/free elision
void use_and_free(void* p, size_t size, double seconds);  // touch, hold `seconds`, free
struct block* push(struct block* list, void* p, size_t size);  // p (touched) becomes the list's head

void phase(const char* name);  // "phase NAME"
void progress(struct ctx* c, const char* what, size_t bytes);  // "t=S WHAT_mib=M", at most once a second
extern int g_quiet;  // --quiet: no progress lines (the demo shows memsight's output, not these)
// Positive scenarios: after `grown` bytes of growth (or 180 s) without an OOM kill, the process is
// clearly not under the limit it was told: "not_killed ..." and exit 1.
void give_up_after(struct ctx* c, size_t grown);

// Paces growth: wait() returns when `done` bytes are due at `rate` bytes/s since start.
struct pacer {
  double start, rate;
  size_t done;
};
struct pacer pacer_start(double rate);
void pacer_wait(struct pacer* p, size_t bytes);

// A working set of `target` bytes in 256 KiB-1 MiB blocks from build_working_set, built over 2 s.
struct block* build_set(struct ctx* c, size_t target);
// The steady working set some scenarios hold before their burst: `fraction` of the limit (±20%),
// built over 2 s from build_working_set, then held `seconds` with light churn and periodic touches.
struct block* steady_phase(struct ctx* c, double fraction, double seconds);
void handle_request(struct ctx* c);  // churn: one malloc, touched, freed

// The scenarios: positives end in an OOM kill, negatives run c->seconds and return.
void run_leak(struct ctx* c);
void run_sawtooth_leak(struct ctx* c);
void run_xmalloc_leak(struct ctx* c);
void run_huge(struct ctx* c);
void run_burst_nodes(struct ctx* c);
void run_realloc_doubling(struct ctx* c);
void run_recursion(struct ctx* c);
void run_others(struct ctx* c);
void run_tmpfs(struct ctx* c);
void run_mmap_leak(struct ctx* c);
void run_steady(struct ctx* c);
void run_lru(struct ctx* c);
void run_temp_buffer(struct ctx* c);
void run_backlog(struct ctx* c);
void run_fragmentation(struct ctx* c);

#endif
