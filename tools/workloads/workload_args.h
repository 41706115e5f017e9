// Command-line numbers for the test workloads: a whole number in [lo, hi], or the program's usage().
#ifndef MS_WORKLOAD_ARGS_H
#define MS_WORKLOAD_ARGS_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static uint64_t parse_num(const char *s, uint64_t lo, uint64_t hi, void (*usage)(void)) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) usage();
  return v;
}

#endif
