// ms_spin: a target that never allocates. It announces itself with "ready <pid>"
// and then sleeps in pause() until a signal kills it. Used for "attached but no
// allocations" and "target killed mid-trace" tests.
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

int main(void) {
  // snprintf into a stack buffer + write(2): unlike printf on stdout this never
  // makes stdio malloc a buffer, so the process performs no heap allocation.
  char line[64];
  int n = snprintf(line, sizeof line, "ready %ld\n", (long)getpid());
  if (n <= 0 || write(1, line, (size_t)n) != n) return 1;
  for (;;) pause();  // returns only for handled signals; we handle none
}
