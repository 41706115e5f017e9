// ms_nofp: a test target built like most programs are (plain -O2: no frame pointers), whose leaks come
// from deep in a recursion and from a signal handler, through a middle function built with frame
// pointers (ms_nofp_middle.c): the stack walker must go through both kinds of code and through the
// signal frame. Truth known exactly; sizes in bytes.
//   ms_nofp [--depth D] [--leak N] [--signals S] [--jit J] [--twins T] [--sync] [--park]
// run_leaks -> descend (D + 1 frames) -> middle_fp -> leak_deep: N blocks of 1000 bytes (malloc).
// raise_signals -> raise(SIGUSR1) S times -> on_signal -> signal_leak: one 700-byte block each.
// run_jit -> code written at run time into an anonymous mapping (as a JIT compiler's: no file, no
// call-frame information) -> jit_leak: J blocks of 500 bytes. x86-64 only.
// run_twins -> twin_a or twin_b (the same frame) -> twin_leak: 300-byte blocks, T from each twin in
// turn (a, b, a, b, ...) and then 2T from each in a row: malloc returns into twin_leak at the same
// stack pointer from either twin, so only the words on the stack tell the two stacks apart.
// --sync: prints `ready PID`, waits for a byte on stdin, works, prints the truth as one JSON line, waits
// for stdin to close, exits 0. --park: at the bottom of the recursion, once leak_deep is done, prints
// `parked PID` and waits for a byte on stdin, so a debugger can show the same callers.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "keep.h"
#include "ms_nofp.h"
#include "workload_args.h"

#define DEEP_SIZE 1000
#define SIGNAL_SIZE 700
#define JIT_SIZE 500
#define TWIN_SIZE 300
#define MAX_BLOCKS 100000

static char g_outbuf[8192];  // stdout buffer (stdio would otherwise malloc one)
static void *g_blocks[MAX_BLOCKS];
static unsigned g_nblocks;
static unsigned g_leaks = 10, g_depth = 8, g_signals = 3, g_jit, g_twins;
static int g_park;

static void usage(void) {
  fprintf(stderr, "usage: ms_nofp [--depth D] [--leak N] [--signals S] [--jit J] [--twins T] [--sync] [--park]\n");
  exit(2);
}

static void wait_stdin(void) {
  char c;
  while (read(0, &c, 1) < 0 && errno == EINTR) {}
}

static void keep_block(void *p) {
  if (!p) {
    fprintf(stderr, "ms_nofp: out of memory\n");
    exit(1);
  }
  memset(p, 1, 16);
  if (g_nblocks < MAX_BLOCKS) g_blocks[g_nblocks++] = p;
}

KEEP void leak_deep(void) {
  for (unsigned i = 0; i < g_leaks; i++) keep_block(malloc(DEEP_SIZE));
}

KEEP void park(void) {
  if (!g_park) return;
  printf("parked %d\n", getpid());
  fflush(stdout);
  wait_stdin();
}

// Not a tail call, not a loop: the volatile local is read after the call returns.
KEEP int descend(int n) {
  volatile int here = n;
  int below = n == 0 ? middle_fp(leak_deep, park) : descend(n - 1);
  return below + here;
}

KEEP void signal_leak(void) { keep_block(malloc(SIGNAL_SIZE)); }

static volatile sig_atomic_t g_handled;  // written after each call below, so none is a tail call

static void on_signal(int sig) {
  (void)sig;
  signal_leak();
  g_handled = g_handled + 1;
}

KEEP void raise_signals(void) {
  for (unsigned i = 0; i < g_signals; i++) raise(SIGUSR1);
}

KEEP void jit_leak(void) { keep_block(malloc(JIT_SIZE)); }

// Calls jit_leak J times from a stub written into an anonymous executable mapping:
//   sub $8,%rsp; movabs $jit_leak,%rax; call *%rax; add $8,%rsp; ret
KEEP void run_jit(void) {
#if defined(__x86_64__)
  static const unsigned char head[] = {0x48, 0x83, 0xec, 0x08, 0x48, 0xb8};
  static const unsigned char tail[] = {0xff, 0xd0, 0x48, 0x83, 0xc4, 0x08, 0xc3};
  void (*target)(void) = jit_leak;
  if (!g_jit) return;
  unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (code == MAP_FAILED) exit(1);
  memcpy(code, head, sizeof(head));
  memcpy(code + sizeof(head), &target, sizeof(target));
  memcpy(code + sizeof(head) + sizeof(target), tail, sizeof(tail));
  if (mprotect(code, 4096, PROT_READ | PROT_EXEC)) exit(1);
  for (unsigned i = 0; i < g_jit; i++) ((void (*)(void))code)();
  munmap(code, 4096);
#else
  if (g_jit) usage();
#endif
}

KEEP void twin_leak(void) { keep_block(malloc(TWIN_SIZE)); }

// The same body, so the same frame; not tail calls (the write after the call).
KEEP void twin_a(void) {
  twin_leak();
  g_handled = g_handled + 1;
}

KEEP void twin_b(void) {
  twin_leak();
  g_handled = g_handled + 1;
}

KEEP void run_twins(void) {
  for (unsigned i = 0; i < g_twins; i++) {
    twin_a();
    twin_b();
  }
  for (unsigned i = 0; i < 2 * g_twins; i++) twin_a();
  for (unsigned i = 0; i < 2 * g_twins; i++) twin_b();
}

KEEP void run_leaks(void) {
  volatile int depth = (int)g_depth;
  descend(depth);
  raise_signals();
  run_jit();
  run_twins();
  g_handled = g_handled + 1;
}

int main(int argc, char **argv) {
  int sync = 0;
  setvbuf(stdout, g_outbuf, _IOFBF, sizeof(g_outbuf));
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--sync")) sync = 1;
    else if (!strcmp(argv[i], "--park")) g_park = 1;
    else if (i + 1 < argc && !strcmp(argv[i], "--depth")) g_depth = (unsigned)parse_num(argv[++i], 0, 1000, usage);
    else if (i + 1 < argc && !strcmp(argv[i], "--leak")) g_leaks = (unsigned)parse_num(argv[++i], 0, 50000, usage);
    else if (i + 1 < argc && !strcmp(argv[i], "--signals")) g_signals = (unsigned)parse_num(argv[++i], 0, 50000, usage);
    else if (i + 1 < argc && !strcmp(argv[i], "--jit")) g_jit = (unsigned)parse_num(argv[++i], 0, 50000, usage);
    else if (i + 1 < argc && !strcmp(argv[i], "--twins")) g_twins = (unsigned)parse_num(argv[++i], 0, 10000, usage);
    else usage();
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL)) return 1;
  if (sync) {
    printf("ready %d\n", getpid());
    fflush(stdout);
    wait_stdin();
  }
  run_leaks();
  printf("{\"pid\": %d, \"depth\": %u, \"functions\": {\"leak_deep\": {\"bytes\": %u, \"allocs\": %u}, "
         "\"signal_leak\": {\"bytes\": %u, \"allocs\": %u}, \"jit_leak\": {\"bytes\": %u, \"allocs\": %u}, "
         "\"twin_a\": {\"bytes\": %u, \"allocs\": %u}, \"twin_b\": {\"bytes\": %u, \"allocs\": %u}}}\n",
         getpid(), g_depth, g_leaks * DEEP_SIZE, g_leaks, g_signals * SIGNAL_SIZE, g_signals, g_jit * JIT_SIZE, g_jit,
         3 * g_twins * TWIN_SIZE, 3 * g_twins, 3 * g_twins * TWIN_SIZE, 3 * g_twins);
  fflush(stdout);
  if (sync) wait_stdin();
  return 0;
}
