// ms_oom_scenario: the ways a process meets its memory limit, and patterns that look like a leak but
// are not, for testing memsight's OOM explanations (the design's diagnosis notes list them under
// "Scenarios a correct implementation must get right").
//   ms_oom_scenario --scenario NAME --limit-mib L [--seed S] [--join-cgroup DIR] [--seconds T]
// Sizes are fractions of L, each varied ±20% by the seed (printed, so a run can be repeated). Every
// allocation is written, so it is resident and charged. Positive scenarios grow until the kernel's OOM
// killer ends them (20-40 s at their limit); negative ones run T seconds (default 40) and exit 0.
// Progress goes to stdout one line at a time: "scenario ...", "phase NAME", "t=S ..._mib=M", "done".
// A failed allocation prints "alloc_failed SIZE" and exits 3; a positive scenario that is not killed
// after 4×L of growth prints "not_killed" and exits 1.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "oom_scenario.h"
#include "workload_args.h"

static const struct scenario {
  const char* name;
  void (*run)(struct ctx*);
  const char* what;
} kScenarios[] = {
    {"leak", run_leak, "kill: small blocks leaked steadily by leak_session_token; churn"},
    {"sawtooth_leak", run_sawtooth_leak, "kill: fill_batch_buffers saws, leak_audit_record leaks slower"},
    {"xmalloc_leak", run_xmalloc_leak, "kill: all through xmalloc; leaky_caller leaks, ok_caller frees"},
    {"huge", run_huge, "kill: a steady set, then load_whole_file mallocs ~2x the limit"},
    {"burst_nodes", run_burst_nodes, "kill: a steady set, then parse_input_nodes reads a huge input"},
    {"realloc_doubling", run_realloc_doubling, "kill: a steady set, then grow_buffer doubles by realloc"},
    {"recursion", run_recursion, "kill: a steady set, then descend() mallocs 256 KiB a level"},
    {"others", run_others, "kill: parent holds ~60% flat, child leaks in sibling_leak"},
    {"tmpfs", run_tmpfs, "kill: append_spool_chunk writes a /dev/shm file steadily"},
    {"mmap_leak", run_mmap_leak, "kill: map_region maps anonymous regions, never unmapped"},
    {"steady", run_steady, "kill: ~85% held flat, serve_peak_request peaks cross at last"},
    {"lru", run_lru, "no kill: cache_insert fills a cache to ~40%, then evicts"},
    {"temp_buffer", run_temp_buffer, "no kill: build_report_buffer, ~30%, freed each cycle"},
    {"backlog", run_backlog, "no kill: a FIFO queue grows to ~40%, then drains"},
    {"fragmentation", run_fragmentation, "no kill: every other small block freed; high RSS"},
};
static const size_t kScenarioCount = sizeof kScenarios / sizeof kScenarios[0];

static void help(void) {
  printf("usage: ms_oom_scenario --scenario NAME --limit-mib L [--seed S] [--join-cgroup DIR] [--seconds T] [--quiet]\n"
          "  --limit-mib L      the memory limit the sizes are fractions of, MiB (8..1048576)\n"
          "  --seed S           random sizes and rates (default: from the clock; printed)\n"
          "  --join-cgroup DIR  first write our pid to DIR/cgroup.procs (exit 1 if that fails)\n"
          "  --seconds T        how long a 'no kill' scenario runs (default 40)\n"
          "  --quiet            no progress lines\n"
          "scenarios:\n");
  for (size_t i = 0; i < kScenarioCount; i++)
    printf("  %-17s %s\n", kScenarios[i].name, kScenarios[i].what);
  printf("exit: 0 done, 1 not killed or failure, 2 bad usage, 3 an allocation failed\n");
}

static void usage(void) {
  fprintf(stderr, "usage: ms_oom_scenario --scenario NAME --limit-mib L [--seed S] [--join-cgroup DIR] ...\n"
                  "ms_oom_scenario --help lists the scenarios and options\n");
  exit(2);
}

static void join_cgroup(const char* dir) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= (int)sizeof path) usage();
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (fd < 0 || write(fd, pid, (size_t)n) != n) {
    fprintf(stderr, "ms_oom_scenario: cannot join cgroup %s (writing %s: %s): is it a cgroup, are we root?\n",
            dir, path, strerror(errno));
    exit(1);
  }
  close(fd);
}

static const struct scenario* find(const char* name) {
  for (size_t i = 0; i < kScenarioCount; i++)
    if (!strcmp(kScenarios[i].name, name)) return &kScenarios[i];
  fprintf(stderr, "ms_oom_scenario: unknown scenario '%s'\n", name);
  usage();
  return NULL;
}

int main(int argc, char** argv) {
  const char *name = NULL, *cgroup = NULL;
  uint64_t limit_mib = 0, seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32), seconds = 40;
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      help();
      return 0;
    }
    if (!strcmp(a, "--quiet")) {
      g_quiet = 1;
      continue;
    }
    if (i + 1 >= argc) usage();
    if (!strcmp(a, "--scenario")) name = argv[++i];
    else if (!strcmp(a, "--limit-mib")) limit_mib = parse_num(argv[++i], 8, 1 << 20, usage);
    else if (!strcmp(a, "--seed")) seed = parse_num(argv[++i], 0, UINT64_MAX, usage);
    else if (!strcmp(a, "--join-cgroup")) cgroup = argv[++i];
    else if (!strcmp(a, "--seconds")) seconds = parse_num(argv[++i], 1, 86400, usage);
    else usage();
  }
  if (!name || !limit_mib) usage();
  if (cgroup) join_cgroup(cgroup);  // before any allocation: all of it is charged there
  const struct scenario* s = find(name);
  setvbuf(stdout, NULL, _IOLBF, 0);  // one line per write: launchers read progress as it happens
  struct ctx c = {.limit = (size_t)limit_mib << 20, .rng = seed * 0x9E3779B97F4A7C15ull | 1,
                  .seconds = (double)seconds, .start = now_s(), .page = (size_t)sysconf(_SC_PAGESIZE)};
  c.next_log = c.start + 1;
  printf("scenario %s pid %ld limit_mib %llu seed %llu\n", s->name, (long)getpid(),
         (unsigned long long)limit_mib, (unsigned long long)seed);
  s->run(&c);
  printf("done\n");
  return 0;
}
