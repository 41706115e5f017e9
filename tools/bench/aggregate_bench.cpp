// ms_bench_aggregate [--quick]: memsight's user-space aggregation alone, on one core, without BPF.
// Synthesizes the ring-buffer records the BPF side writes (include/memsight/abi.h): STACKS stack records,
// LIVE allocations that stay alive (the fill), then two churns of free + alloc pairs over them:
// temporaries (each freed 64 allocations after its birth, as most blocks are: their entries are in
// cache) and random frees over the whole live set (every lookup a cache miss: the worst case). Half the
// births reuse the address just freed, as malloc's tcache does. The records are built before the clock
// starts and fed one at a time, as the ring-buffer callback does, to core::Decoder -> core::Tracker, then
// again through core::Pipeline with the real Symbolizer noting every new stack (frames are code
// addresses of this process). Prints one JSON line: records per CPU second of each phase, heap
// (mallinfo2: arenas and malloc's own mappings) and RSS bytes per live allocation after the fill, the CPU time of a snapshot of every
// stack, and of naming its frames, cold then warm. CPU time (this thread's), not wall time: the figures
// hold on a machine busy with other work.
#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "core/decoder.hpp"
#include "core/pipeline.hpp"
#include "core/tracker.hpp"
#include "memsight/abi.h"
#include "report/report.hpp"
#include "symbolize/symbolizer.hpp"

namespace {

using namespace memsight;

struct Sizes {
  size_t stacks = 1000;
  size_t live = 1'000'000;
  size_t churn_pairs = 2'000'000;  // each pair is one free and one alloc record
};

constexpr uint64_t kRecordNs = 200;  // synthetic time between records: 5 M records per synthetic second

// Records back to back, each starting with its ms_header (whose size field says where the next begins).
struct Stream {
  std::vector<std::byte> bytes;
  size_t records = 0;

  template <typename Rec>
  void add(const Rec& r, size_t size = sizeof(Rec)) {
    const auto* p = reinterpret_cast<const std::byte*>(&r);
    bytes.insert(bytes.end(), p, p + size);
    ++records;
  }
};

ms_header header(uint16_t kind, size_t size, uint32_t pid, uint64_t& clock) {
  ms_header h{};
  h.kind = kind;
  h.size = static_cast<uint16_t>(size);
  h.tgid = h.tid = pid;
  h.time_ns = clock += kRecordNs;
  return h;
}

// Code addresses of this process (libc and this program), a little past each entry as return addresses
// are, so that symbolizing them does the real work: maps lookup, ELF symbols, DWARF where there is some.
std::vector<uint64_t> code_addresses() {
  static const char* const kNames[] = {
      "malloc",  "free",        "calloc",   "realloc", "printf",  "fprintf", "snprintf",       "qsort",
      "bsearch", "strtol",      "strtoull", "memcpy",  "memmove", "strlen",  "strcmp",         "fopen",
      "fclose",  "fread",       "fwrite",   "read",    "write",   "open",    "close",          "poll",
      "getenv",  "setenv",      "atoi",     "sprintf", "sscanf",  "strchr",  "strstr",         "strdup",
      "time",    "localtime_r", "strftime", "abort",   "exit",    "atexit",  "pthread_create", "pthread_join",
      "dlopen",  "dlsym",       "mmap",     "munmap",  "getpid"};
  std::vector<uint64_t> out;
  for (const char* name : kNames)
    if (void* p = dlsym(RTLD_DEFAULT, name)) out.push_back(reinterpret_cast<uint64_t>(p) + 5);
  out.push_back(reinterpret_cast<uint64_t>(&code_addresses) + 9);
  out.push_back(reinterpret_cast<uint64_t>(&header) + 9);
  return out;
}

uint64_t mix64(uint64_t x) {  // splitmix64's finalizer: stack ids look like BPF's hashes
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Stack records: 8 to 16 frames each, frames[0] malloc's entry, the rest drawn from the code addresses.
std::vector<uint64_t> add_stacks(Stream& s, const Sizes& n, uint32_t pid, uint64_t& clock) {
  const std::vector<uint64_t> code = code_addresses();
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < n.stacks; ++i) {
    ms_stack r{};
    const uint16_t frames = static_cast<uint16_t>(8 + i % 9);
    r.h = header(MS_REC_STACK, MS_STACK_HEADER_BYTES + 8 * frames, pid, clock);
    r.stack_id = mix64(i) | 1;  // BPF's ids are odd
    r.nr_frames = frames;
    r.frames[0] = code[0] - 5;
    for (uint16_t f = 1; f < frames; ++f) r.frames[f] = code[mix64(i * 64 + f) % code.size()];
    s.add(r, r.h.size);
    ids.push_back(r.stack_id);
  }
  return ids;
}

void add_alloc(Stream& s, uint32_t pid, uint64_t& clock, uint64_t address, uint64_t size, uint64_t stack) {
  ms_alloc r{};
  r.h = header(MS_REC_ALLOC, sizeof(r), pid, clock);
  r.address = address;
  r.size = size;
  r.stack_id = stack;
  r.fn = MS_FN_MALLOC;
  s.add(r);
}

void add_free(Stream& s, uint32_t pid, uint64_t& clock, uint64_t address) {
  ms_free r{};
  r.h = header(MS_REC_FREE, sizeof(r), pid, clock);
  r.address = address;
  r.fn = MS_FN_FREE;
  s.add(r);
}

struct Workload {
  Stream fill;          // stack records, then the live allocations
  Stream temporaries;   // short-lived blocks: each freed 64 allocations after its birth, its address reused
  Stream random;        // a random live block freed, another born: every lookup is a cache miss
  uint64_t end_ns = 0;  // time of the last record
};

// Stacks are chosen with a skew (a few call sites allocate most), sizes 16..256 bytes. Addresses step by
// 80 bytes (a 64-byte block plus malloc's header); a freed address is reused half the time, as malloc's
// tcache does.
Workload make_workload(const Sizes& n, uint32_t pid) {
  Workload w;
  uint64_t clock = 1'000'000'000;
  std::mt19937_64 rng(7);
  const std::vector<uint64_t> stacks = add_stacks(w.fill, n, pid, clock);
  auto pick_stack = [&] { return stacks[rng() % (rng() % stacks.size() + 1)]; };
  auto pick_size = [&] { return 16 + 16 * (rng() % 16); };
  uint64_t next_address = 0x5555'0000'0000ull;
  std::vector<uint64_t> live(n.live);
  for (uint64_t& a : live) {
    a = next_address += 80;
    add_alloc(w.fill, pid, clock, a, pick_size(), pick_stack());
  }
  std::vector<uint64_t> recent(64, 0);  // the temporaries in flight, oldest next
  for (size_t i = 0; i < n.churn_pairs; ++i) {
    uint64_t& slot = recent[i % recent.size()];
    if (slot) add_free(w.temporaries, pid, clock, slot);
    if (!slot || (i & 1)) slot = next_address += 80;
    add_alloc(w.temporaries, pid, clock, slot, pick_size(), pick_stack());
  }
  for (uint64_t a : recent) add_free(w.temporaries, pid, clock, a);
  for (size_t i = 0; i < n.churn_pairs; ++i) {
    uint64_t& slot = live[rng() % live.size()];
    add_free(w.random, pid, clock, slot);
    if (i & 1) slot = next_address += 80;
    add_alloc(w.random, pid, clock, slot, pick_size(), pick_stack());
  }
  w.end_ns = clock;
  return w;
}

// CPU time of this thread, seconds: what the work costs one core, whatever else the machine runs.
double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

// Feeds every record of `s` to `decoder` as the ring-buffer callback would; samples the tracker once per
// synthetic second as the session does. Returns records per CPU second.
double feed(const Stream& s, core::Decoder& decoder, core::Tracker& tracker) {
  const double start = cpu_seconds();
  const std::byte* p = s.bytes.data();
  const std::byte* const end = p + s.bytes.size();
  uint64_t next_sample = 0;
  while (p < end) {
    uint16_t size;
    uint64_t t;
    std::memcpy(&size, p + offsetof(ms_header, size), sizeof(size));
    std::memcpy(&t, p + offsetof(ms_header, time_ns), sizeof(t));
    decoder.decode(std::span(p, size));
    if (t >= next_sample) {
      if (next_sample) tracker.sample(t);
      next_sample = t + 1'000'000'000;
    }
    p += size;
  }
  return static_cast<double>(s.records) / (cpu_seconds() - start);
}

// Bytes malloc has handed out: from its arenas and as mappings of their own (blocks past the mmap
// threshold, which the arena count alone leaves out). The tracker maps its big tables itself
// (core/block_table.hpp): only RSS sees those.
size_t heap_bytes() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

long resident_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

struct Rates {  // records per CPU second, by phase
  double fill = 0, temporaries = 0, random = 0;
};

struct SnapshotCost {      // CPU time
  double snapshot_ms = 0;  // Tracker::snapshot: every stack's row
  double resolve_ms = 0;   // naming every frame of every row (report::resolve_frames)
  size_t frames = 0;
};

SnapshotCost snapshot_cost(core::Tracker& tracker, core::SymbolSource& symbols, uint64_t now_ns) {
  SnapshotCost cost;
  const double start = cpu_seconds();
  core::Snapshot snap = tracker.snapshot(now_ns, core::SnapshotOptions{});
  const double taken = cpu_seconds();
  report::resolve_frames(snap, symbols);
  cost.snapshot_ms = (taken - start) * 1e3;
  cost.resolve_ms = (cpu_seconds() - taken) * 1e3;
  for (const auto& row : snap.stacks) cost.frames += row.frames.size();
  return cost;
}

}  // namespace

int main(int argc, char** argv) {
  Sizes n;
  if (argc > 1 && std::strcmp(argv[1], "--quick") == 0) n = Sizes{1000, 200'000, 400'000};
  const uint32_t pid = static_cast<uint32_t>(getpid());
  const Workload w = make_workload(n, pid);

  // Decoder -> Tracker: throughput and memory per live allocation.
  malloc_trim(0);
  const size_t heap_before = heap_bytes();
  const long rss_before = resident_bytes();
  core::Tracker tracker;
  core::Decoder decoder(tracker);
  const Rates plain{feed(w.fill, decoder, tracker), 0, 0};
  const size_t live = tracker.live_blocks();
  const double heap_per_live = double(heap_bytes() - heap_before) / double(live);
  const double rss_per_live = double(resident_bytes() - rss_before) / double(live);
  const Rates rates{plain.fill, feed(w.temporaries, decoder, tracker), feed(w.random, decoder, tracker)};
  const core::TrackerCounters c = tracker.counters();
  const bool exact = tracker.live_blocks() == live && c.unmatched_frees == 0 && c.unknown_stack_allocs == 0 &&
                     c.invalid_records == 0 && decoder.counters().rejected() == 0;

  // Decoder -> Pipeline (Tracker + Symbolizer noting each new stack), then snapshots resolved.
  core::Tracker tracker2;
  symbolize::Symbolizer symbols;
  core::Pipeline pipeline(tracker2, symbols);
  core::Decoder decoder2(pipeline);
  const Rates with_symbols{feed(w.fill, decoder2, tracker2), feed(w.temporaries, decoder2, tracker2),
                           feed(w.random, decoder2, tracker2)};
  const SnapshotCost cold = snapshot_cost(tracker2, symbols, w.end_ns + 1'000'000'000);
  const SnapshotCost warm = snapshot_cost(tracker2, symbols, w.end_ns + 2'000'000'000);

  std::printf(
      "{\"stacks\": %zu, \"live_blocks\": %zu, \"churn_pairs\": %zu, \"exact\": %s, "
      "\"records_per_s\": {\"fill\": %.0f, \"temporaries\": %.0f, \"random_frees\": %.0f}, "
      "\"records_per_s_with_symbolizer\": {\"fill\": %.0f, \"temporaries\": %.0f, \"random_frees\": %.0f}, "
      "\"heap_bytes_per_live\": %.1f, \"rss_bytes_per_live\": %.1f, \"snapshot_ms\": %.1f, "
      "\"resolve_frames\": %zu, \"resolve_cold_ms\": %.1f, \"resolve_warm_ms\": %.1f}\n",
      n.stacks, live, n.churn_pairs, exact ? "true" : "false", rates.fill, rates.temporaries, rates.random,
      with_symbols.fill, with_symbols.temporaries, with_symbols.random, heap_per_live, rss_per_live,
      warm.snapshot_ms, warm.frames, cold.resolve_ms, warm.resolve_ms);
  return 0;
}
