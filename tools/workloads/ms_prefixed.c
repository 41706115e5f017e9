// ms_prefixed: leaks N blocks of S bytes through je_malloc of libms_prefixed_alloc.so (a prefixed API
// from a library memsight does not know), frees M more; prints its truth as one JSON line, exits.
//   ms_prefixed [--leak N] [--size S] [--churn M]
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "keep.h"
#include "workload_args.h"

void *je_malloc(size_t size);
void je_free(void *p);

static void *volatile g_last;

KEEP static void leak_prefixed(size_t size) { g_last = je_malloc(size); }

KEEP static void churn_prefixed(size_t size) {
  void *p = je_malloc(size);
  g_last = p;
  je_free(p);
}

static void usage(void) {
  fprintf(stderr, "usage: ms_prefixed [--leak N] [--size S] [--churn M]\n");
  _exit(2);
}

int main(int argc, char **argv) {
  uint64_t leak = 0, size = 64, churn = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--leak")) leak = parse_num(argv[i + 1], 0, 10000, usage);
    else if (!strcmp(argv[i], "--size")) size = parse_num(argv[i + 1], 1, 4096, usage);
    else if (!strcmp(argv[i], "--churn")) churn = parse_num(argv[i + 1], 0, 10000, usage);
    else usage();
  }
  if (argc % 2 == 0) usage();
  for (uint64_t i = 0; i < leak; ++i) leak_prefixed(size);
  for (uint64_t i = 0; i < churn; ++i) churn_prefixed(size);
  printf("{\"pid\": %ld, \"leak_prefixed\": {\"bytes\": %llu, \"allocs\": %llu}}\n", (long)getpid(),
         (unsigned long long)(leak * size), (unsigned long long)leak);
  fflush(stdout);
  return 0;
}
