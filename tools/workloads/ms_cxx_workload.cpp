// ms_cxx_workload: C++ allocations through operator new, whose truth is known exactly. Leaks N nodes
// from leak_node() (new), N/2 arrays from leak_array() (new[]), one std::vector grown to a known
// capacity in keep_vector(); churns new/delete pairs in churn_node(). Bytes are sizes requested.
//   ms_cxx_workload [--leak N] [--churn N] [--bad-alloc N] [--sync]
// --bad-alloc N: N requests too large to succeed (4 EiB: more than any x86-64 address space, so every
// allocator refuses it; jemalloc hands out 64 TiB of address space) through throwing new (std::bad_alloc caught)
// and N through nothrow new (nullptr): a tracer must leave C++ exception handling intact.
// With --sync: prints `ready PID`, waits for a byte on stdin, works, prints the truth as one JSON line,
// waits for stdin to close, exits 0. Without it: works, prints the truth, exits.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#define KEEP __attribute__((noinline))

namespace {

struct Node {
  Node* next;
  char payload[112];  // sizeof(Node) == 120
};

constexpr size_t kArrayBytes = 300;
constexpr size_t kVectorInts = 1000;  // reserve() asks for exactly this many ints

Node* g_leaked = nullptr;
std::vector<char*> g_arrays;
std::vector<int>* g_vector = nullptr;
volatile unsigned g_sum;

KEEP void leak_node() {
  Node* n = new Node;
  std::memset(n->payload, 1, sizeof(n->payload));
  n->next = g_leaked;
  g_leaked = n;
}

KEEP void leak_array() {
  char* a = new char[kArrayBytes];
  a[0] = 2;
  g_arrays.back() = a;  // the slot was made before: no vector growth here
}

KEEP void keep_vector() {
  g_vector = new std::vector<int>();  // 24 bytes, also leaked
  g_vector->reserve(kVectorInts);
  g_vector->push_back(3);
}

KEEP void churn_node() {
  Node* n = new Node;
  n->payload[0] = 4;
  g_sum = g_sum + n->payload[0];
  delete n;
}

constexpr size_t kImpossible = size_t{1} << 62;
char* volatile g_escape;  // a pointer stored here can't be elided with its new/delete pair

// Returns whether the request failed the way C++ says: bad_alloc thrown, and caught here.
KEEP bool throwing_new_fails() {
  try {
    g_escape = new char[kImpossible];
    delete[] g_escape;
    return false;
  } catch (const std::bad_alloc&) {
    return true;
  }
}

KEEP bool nothrow_new_fails() {
  g_escape = new (std::nothrow) char[kImpossible];
  const bool failed = g_escape == nullptr;
  delete[] g_escape;
  return failed;
}

void wait_stdin() {
  char c;
  (void)!read(0, &c, 1);
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long leak = 0, churn = 0, bad = 0;
  bool sync = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--sync")) sync = true;
    else if (!std::strcmp(argv[i], "--leak") && i + 1 < argc) leak = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--churn") && i + 1 < argc) churn = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--bad-alloc") && i + 1 < argc) bad = std::strtoul(argv[++i], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: ms_cxx_workload [--leak N] [--churn N] [--bad-alloc N] [--sync]\n");
      return 2;
    }
  }
  const unsigned long arrays = leak / 2;
  g_arrays.reserve(arrays);  // before the handshake: not part of the truth
  if (sync) {
    std::printf("ready %ld\n", static_cast<long>(getpid()));
    std::fflush(stdout);
    wait_stdin();
  }
  for (unsigned long i = 0; i < leak; ++i) leak_node();
  for (unsigned long i = 0; i < arrays; ++i) {
    g_arrays.push_back(nullptr);
    leak_array();
  }
  keep_vector();
  for (unsigned long i = 0; i < churn; ++i) churn_node();
  unsigned long caught = 0, null = 0;
  for (unsigned long i = 0; i < bad; ++i) {
    caught += throwing_new_fails();
    null += nothrow_new_fails();
  }
  std::printf("{\"pid\": %ld, \"functions\": {\"leak_node\": {\"bytes\": %lu, \"allocs\": %lu}, "
              "\"leak_array\": {\"bytes\": %lu, \"allocs\": %lu}, \"keep_vector\": {\"bytes\": %lu, \"allocs\": 2}, "
              "\"churn_node\": {\"bytes\": 0, \"allocs\": 0}}, \"churn_pairs\": %lu, \"bad_alloc_caught\": %lu, "
              "\"nothrow_null\": %lu}\n",
              static_cast<long>(getpid()), leak * sizeof(Node), leak, arrays * kArrayBytes, arrays,
              sizeof(std::vector<int>) + kVectorInts * sizeof(int), churn, caught, null);
  std::fflush(stdout);
  if (sync) wait_stdin();
  return 0;
}
