// What both tracing objects, exact mode's (alloc_trace) and growth mode's (growth_trace), are sized and
// told at load: they share the ring buffer and seen-stacks map of bpf/alloc_trace.bpf.h and the walker's
// tables of bpf/unwind.bpf.h, so one set of options and one sizing serve both.
#pragma once

#include <cstdint>

#include "attach/unwind_maps.hpp"

struct bpf_map;

namespace memsight::attach {

struct TraceOptions {
  static constexpr uint32_t kMaxRingBytes = 1u << 30;
  bool all = false;                  // every process on the host but memsight (exact: attach with
                                     // AllocTracer::kEveryProcess, exits reported by BPF)
  uint32_t ring_bytes = 32u << 20;   // ring buffer size (a power of two, a page to kMaxRingBytes)
  uint32_t wake_bytes = 4u << 20;    // wake the consumer when this much waits (at most an eighth of the
                                     // ring: a smaller ring wakes it sooner); else it drains on a timer
  uint32_t stack_cache = 65536;      // stacks BPF remembers as sent (LRU)
  uint64_t sample_bytes = 0;         // mean bytes between sample points (Poisson over bytes): exact mode's
                                     // calls, growth mode's faults; 0: every one
  uint32_t unwind_rows = kDefaultUnwindRows;    // call-frame table rows (12 bytes each): the memory cap
  uint32_t unwind_files = kDefaultUnwindFiles;  // files with a call-frame table
};

// The maps both objects have, by the names the shared BPF headers give them.
struct SharedMaps {
  bpf_map* events;
  bpf_map* seen_stacks;
  bpf_map* unwind_rows;
  bpf_map* unwind_modules;
};

// Sizes the shared maps of an opened, not yet loaded, object.
void size_shared_maps(const TraceOptions& options, const SharedMaps& maps);

// The `wake_bytes` the object's BPF is told: the option, at most an eighth of the ring.
uint32_t wake_threshold(const TraceOptions& options);

}  // namespace memsight::attach
