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
#include "attach/unwind_maps.hpp"
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
  uint32_t unwind_rows = kDefaultUnwindRows;    // call-frame table rows (12 bytes each): the memory cap
  uint32_t unwind_files = kDefaultUnwindFiles;  // files with a call-frame table
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
  // Notes from start-up (exec/fork tracepoints that did not attach).
  const std::vector<std::string>& notes() const override { return notes_; }
  core::UnwindSink* unwind_sink() override { return unwind_.get(); }

 private:
  explicit AllocTracer(alloc_trace* skel) : skel_(skel) {}
  void attach_process_events();

  alloc_trace* skel_ = nullptr;
  RingReader ring_;
  std::vector<bpf_link*> links_;
  std::vector<std::string> notes_;
  std::unique_ptr<UnwindMaps> unwind_;
};

}  // namespace memsight::attach
