// ms_nofp_cxx: C++ leaks from plain -O2 code (no frame pointers) through libstdc++, whose truth is known
// exactly: operator new at the bottom of a recursion, std::vector growth, std::string buffers (made by
// libstdc++'s own code). Sizes are bytes requested.
//   ms_nofp_cxx [--depth D] [--leak N] [--strings M] [--sync] [--park]
// build (D + 1 frames) -> leak_node: N nodes of 120 bytes (new).
// grow_vector: a new std::vector<long> (24 bytes) grown by push_back to 1000 elements: its final buffer.
// make_strings: M new std::string (32 bytes each) holding 100 characters (101-byte buffers).
// fill_stream: a std::ostringstream written 1000 characters: its buffer is grown by libstdc++'s own code
// (not in the truth: the growth policy is the library's).
// --sync and --park as ms_nofp (park at the bottom of the recursion, after leak_node).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "keep.h"

namespace {

struct Node {
  Node* next;
  char payload[112];  // sizeof(Node) == 120
};
constexpr size_t kStringChars = 100;
constexpr unsigned kVectorElements = 1000;

Node* g_nodes = nullptr;
std::vector<long>* g_vector = nullptr;
std::ostringstream* g_stream = nullptr;
std::string* g_strings[10000];
unsigned g_leaks = 10, g_depth = 8, g_nstrings = 5;
bool g_park = false;

void wait_stdin() {
  char c;
  while (read(0, &c, 1) < 0 && errno == EINTR) {
  }
}

unsigned number(const char* s, unsigned hi) {
  char* end;
  unsigned long v = std::strtoul(s, &end, 10);
  if (*end || end == s || v > hi) {
    std::fprintf(stderr, "usage: ms_nofp_cxx [--depth D] [--leak N] [--strings M] [--sync] [--park]\n");
    std::exit(2);
  }
  return static_cast<unsigned>(v);
}

}  // namespace

KEEP void leak_node() {
  for (unsigned i = 0; i < g_leaks; i++) {
    Node* n = new Node;
    std::memset(n->payload, 1, sizeof(n->payload));
    n->next = g_nodes;
    g_nodes = n;
  }
}

KEEP void park() {
  if (!g_park) return;
  std::printf("parked %d\n", getpid());
  std::fflush(stdout);
  wait_stdin();
}

// Not a tail call, not a loop: the volatile local is read after the call returns.
KEEP int build(int n) {
  volatile int here = n;
  int below = 0;
  if (n == 0) {
    leak_node();
    park();
  } else {
    below = build(n - 1);
  }
  return below + here;
}

KEEP void grow_vector() {
  g_vector = new std::vector<long>();
  for (unsigned i = 0; i < kVectorElements; i++) g_vector->push_back(i);
}

KEEP void make_strings() {
  for (unsigned i = 0; i < g_nstrings; i++) g_strings[i] = new std::string(kStringChars, 'x');
}

KEEP void fill_stream() {
  g_stream = new std::ostringstream;
  for (int i = 0; i < 100; i++) *g_stream << "0123456789";
}

int main(int argc, char** argv) {
  bool sync = false;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--sync")) sync = true;
    else if (!std::strcmp(argv[i], "--park")) g_park = true;
    else if (i + 1 < argc && !std::strcmp(argv[i], "--depth")) g_depth = number(argv[++i], 1000);
    else if (i + 1 < argc && !std::strcmp(argv[i], "--leak")) g_leaks = number(argv[++i], 100000);
    else if (i + 1 < argc && !std::strcmp(argv[i], "--strings")) g_nstrings = number(argv[++i], 10000);
    else number("", 0);
  }
  if (sync) {
    std::printf("ready %d\n", getpid());
    std::fflush(stdout);
    wait_stdin();
  }
  volatile int depth = static_cast<int>(g_depth);
  build(depth);
  grow_vector();
  make_strings();
  fill_stream();
  const size_t vector_bytes = 24 + g_vector->capacity() * sizeof(long);
  const size_t string_bytes = g_nstrings * (sizeof(std::string) + kStringChars + 1);
  std::printf("{\"pid\": %d, \"depth\": %u, \"functions\": {\"leak_node\": {\"bytes\": %zu}, \"grow_vector\": "
              "{\"bytes\": %zu}, \"make_strings\": {\"bytes\": %zu}}}\n",
              getpid(), g_depth, g_leaks * sizeof(Node), vector_bytes, string_bytes);
  std::fflush(stdout);
  if (sync) wait_stdin();
  return 0;
}
