// The only code that touches libbpf for exact tracing: open, size and load the BPF object, attach the
// probe table to each target's allocator, drain the ring buffer into the decoder, read loss counters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attach/event_source.hpp"
#include "attach/ring_reader.hpp"
#include "attach/target.hpp"
#include "core/decoder.hpp"
#include "core/error.hpp"

struct alloc_trace;
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

class AllocTracer final : public EventSource {
 public:
  static Result<std::unique_ptr<AllocTracer>> open(const TracerOptions& options, core::Decoder& decoder);
  ~AllocTracer();

  // Attaches every allocator function the module defines, scoped to `pid`. Returns notes for the user
  // (functions this allocator lacks, entry points shared by two names).
  Result<std::vector<std::string>> attach(uint32_t pid, const AllocatorModule& module);
  Result<int> poll(int timeout_ms) override { return ring_.poll(timeout_ms); }
  Result<int> drain() override { return ring_.drain(); }
  BpfLosses losses() const override;
  // --sample-bytes: drops an exited process's entries from the BPF table of sampled blocks, which
  // would otherwise fill it over a long trace (and could match the frees of a later process with its
  // pid). O(table size) system calls: once per exit.
  void forget_process(uint32_t pid);
  // Notes from start-up (exec/fork tracepoints that did not attach).
  const std::vector<std::string>& notes() const override { return notes_; }

 private:
  explicit AllocTracer(alloc_trace* skel) : skel_(skel) {}
  void attach_process_events();

  alloc_trace* skel_ = nullptr;
  RingReader ring_;
  std::vector<bpf_link*> links_;
  std::vector<std::string> notes_;
};

}  // namespace memsight::attach
