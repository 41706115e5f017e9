// ms_static: a statically linked target (no libc.so to put uprobes on). It still
// calls malloc, from the copy of glibc's allocator linked into the executable, so
// it exercises how memsight reports a target without a shared allocator library.
//   ms_static [--sync]
// Leaks STATIC_N blocks of STATIC_SIZE bytes from static_leak(). With --sync it
// uses the same handshake as ms_workload: "ready <pid>", wait for a byte or EOF
// on stdin, do the work, print the truth line, wait on stdin again, exit 0.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STATIC_N 16        // blocks leaked
#define STATIC_SIZE 1024   // bytes per block

#include "keep.h"

static volatile unsigned g_sum;
static char g_outbuf[4096];  // static stdout buffer: stdio does not malloc one

static void wait_stdin(void) {
  char c;
  while (read(0, &c, 1) < 0 && errno == EINTR) {}
}

KEEP static void *static_leak(size_t size) {
  unsigned char *p = malloc(size);
  if (!p) { perror("ms_static: malloc"); exit(1); }
  memset(p, 0x5A, size);
  g_sum += p[size - 1];  // work after malloc: no tail call
  return p;
}

KEEP static void run_static(void) {
  for (int i = 0; i < STATIC_N; i++) g_sum += *(unsigned char *)static_leak(STATIC_SIZE);
}

int main(int argc, char **argv) {
  int sync = argc == 2 && !strcmp(argv[1], "--sync");
  if (argc > 2 || (argc == 2 && !sync)) {
    fprintf(stderr, "usage: ms_static [--sync]\n");
    return 2;
  }
  setvbuf(stdout, g_outbuf, _IOFBF, sizeof g_outbuf);
  if (sync) {
    printf("ready %ld\n", (long)getpid());
    fflush(stdout);
    wait_stdin();
  }
  run_static();
  printf("{\"pid\": %ld, \"static\": true, \"leak_function\": \"static_leak\", \"leaked_bytes\": %d, "
         "\"leaked_allocs\": %d, \"heap_outstanding_bytes\": %d, \"heap_outstanding_allocs\": %d, "
         "\"functions\": {\"static_leak\": {\"bytes\": %d, \"allocs\": %d}}}\n",
         (long)getpid(), STATIC_N * STATIC_SIZE, STATIC_N, STATIC_N * STATIC_SIZE, STATIC_N, STATIC_N * STATIC_SIZE,
         STATIC_N);
  fflush(stdout);
  if (sync) wait_stdin();
  return 0;
}
