// ms_hog: grows its anonymous memory step by step until it has done every step or the kernel kills
// it, so tests can drive a real OOM kill in a memory cgroup.
//   ms_hog [--sync] [--pause-ms N] MIB_PER_STEP STEPS
// Each step mallocs MIB_PER_STEP MiB and writes every page (resident, anonymous), then prints
// "step N BYTES" (cumulative bytes touched). With --sync it first prints "ready PID" and waits for one
// byte on stdin (the test moves it into a cgroup meanwhile); after the last step it prints "done BYTES"
// and, with --sync, waits for stdin to close before it exits.
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "workload_args.h"

static volatile unsigned char g_sink;  // keeps the compiler from dropping the writes

static void usage(void) {
  fprintf(stderr, "usage: ms_hog [--sync] [--pause-ms N] MIB_PER_STEP STEPS\n");
  exit(2);
}

static uint64_t num(const char *s, uint64_t lo, uint64_t hi) { return parse_num(s, lo, hi, usage); }

// Blocks until one byte or EOF arrives on stdin: the handshake with the test.
static void wait_stdin(void) {
  char c;
  while (read(0, &c, 1) < 0 && errno == EINTR) {}
}

// One step: a fresh block with every page written, so it is resident and charged to the cgroup.
static void grow(size_t bytes, size_t page) {
  unsigned char *p = malloc(bytes);
  if (!p) {
    fprintf(stderr, "ms_hog: malloc(%zu) failed\n", bytes);
    exit(1);
  }
  for (size_t i = 0; i < bytes; i += page) p[i] = (unsigned char)i | 1;
  g_sink = p[bytes - 1];  // the block is never freed: the hog only grows
}

int main(int argc, char **argv) {
  int sync = 0;
  uint64_t pause_ms = 0;
  const char *pos[2];
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--sync")) sync = 1;
    else if (!strcmp(argv[i], "--pause-ms") && i + 1 < argc) pause_ms = num(argv[++i], 0, 60000);
    else if (npos < 2) pos[npos++] = argv[i];
    else usage();
  }
  if (npos != 2) usage();
  const uint64_t mib = num(pos[0], 1, 1 << 20), steps = num(pos[1], 1, 1 << 20);
  const size_t page = (size_t)sysconf(_SC_PAGESIZE), bytes = (size_t)mib << 20;
  setvbuf(stdout, NULL, _IOLBF, 0);  // one line per write: the test reads progress as it happens
  if (sync) {
    printf("ready %ld\n", (long)getpid());
    wait_stdin();
  }
  const struct timespec pause = {(time_t)(pause_ms / 1000), (long)(pause_ms % 1000) * 1000000L};
  uint64_t total = 0;
  for (uint64_t s = 1; s <= steps; s++) {
    grow(bytes, page);
    total += bytes;
    printf("step %llu %llu\n", (unsigned long long)s, (unsigned long long)total);
    if (pause_ms) nanosleep(&pause, NULL);
  }
  printf("done %llu\n", (unsigned long long)total);
  if (sync) wait_stdin();
  return 0;
}
