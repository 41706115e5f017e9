// The only code that touches libbpf for exact tracing: open, size and load the BPF object, attach the
// probe table to each target's allocator, drain the ring buffer into the decoder, read loss counters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attach/target.hpp"
#include "core/decoder.hpp"
#include "core/error.hpp"

struct alloc_trace;
struct ring_buffer;
struct bpf_link;

namespace memsight::attach {

struct TracerOptions {
  static constexpr uint32_t kMaxRingBytes = 1u << 30;
  uint32_t ring_bytes = 32u << 20;     // ring buffer size (a power of two, a page to kMaxRingBytes)
  uint32_t wake_bytes = 4u << 20;      // wake the consumer when this much waits (at most an eighth of the
                                       // ring: a smaller ring wakes it sooner); else it drains on a timer
  uint32_t max_threads = 16384;        // calls in flight at once (one per thread inside an allocator)
  uint32_t stack_cache = 65536;        // stacks BPF remembers as sent (LRU)
  uint64_t sample_bytes = 0;           // --sample-bytes: mean bytes between sample points; 0: every call
  uint32_t sampled_blocks = 1u << 20;  // taken blocks alive at once, all targets (sampling only); more are
                                       // counted in BpfLosses::sampled_full
};

// BPF-side losses (abi.h MS_CNT_*), summed over CPUs.
struct BpfLosses {
  uint64_t ringbuf_full = 0;
  uint64_t inflight_full = 0;
  uint64_t stack_truncated = 0;
  uint64_t inflight_stale = 0;
  uint64_t nested = 0;
  uint64_t stack_failed = 0;
  uint64_t sampled_full = 0;  // taken blocks not recorded: the table of taken blocks was full
  uint64_t no_sampler = 0;    // calls not recorded: a thread's sampler state could not be made
  // Records the probes could not write, or calls they could not record: the snapshot's lost.events.
  uint64_t unrecorded() const { return ringbuf_full + inflight_full + sampled_full + no_sampler; }
};

class AllocTracer {
 public:
  static Result<std::unique_ptr<AllocTracer>> open(const TracerOptions& options, core::Decoder& decoder);
  ~AllocTracer();

  // Attaches every allocator function the module defines, scoped to `pid`. Returns notes for the user
  // (functions this allocator lacks, entry points shared by two names).
  Result<std::vector<std::string>> attach(uint32_t pid, const AllocatorModule& module);
  // Waits up to timeout_ms for a wake-up, then drains everything waiting. Returns records consumed.
  Result<int> poll(int timeout_ms);
  // Drains everything waiting without blocking.
  Result<int> drain();
  BpfLosses losses() const;
  // --sample-bytes: drops an exited process's entries from the BPF table of sampled blocks, which
  // would otherwise fill it over a long trace (and could match the frees of a later process with its
  // pid). O(table size) system calls: once per exit.
  void forget_process(uint32_t pid);
  // Notes from start-up (exec/fork tracepoints that did not attach).
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  AllocTracer(alloc_trace* skel, core::Decoder& decoder) : skel_(skel), decoder_(decoder) {}
  Result<void> start_ring();
  void attach_process_events();

  alloc_trace* skel_ = nullptr;
  core::Decoder& decoder_;
  ring_buffer* ring_ = nullptr;
  std::vector<bpf_link*> links_;
  std::vector<std::string> notes_;
};

}  // namespace memsight::attach
