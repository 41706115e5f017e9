// ms_no_malloc: a static program with no C library and so no malloc, like a Go binary with its own
// allocator: memsight must refuse it with exit 4 and say what it looked for. Prints `ready PID`,
// then sleeps in pause() until killed. x86-64 only (raw system calls).
#include <stddef.h>

static long sys(long nr, long a, long b, long c) {
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}

enum { kWrite = 1, kPause = 34, kGetpid = 39, kExit = 60 };

// The kernel enters _start with a 16-byte aligned stack, not as a call would leave it: realign.
__attribute__((force_align_arg_pointer, noreturn)) void _start(void) {
  char line[32] = "ready ";
  char digits[20];
  size_t n = 0, len = 6;
  for (long pid = sys(kGetpid, 0, 0, 0); pid > 0 || n == 0; pid /= 10) digits[n++] = (char)('0' + pid % 10);
  while (n) line[len++] = digits[--n];
  line[len++] = '\n';
  sys(kWrite, 1, (long)line, (long)len);
  for (;;) sys(kPause, 0, 0, 0);
}
