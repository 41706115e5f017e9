// What a session reads records from: exact tracing (AllocTracer) or growth tracing (GrowthTracer).
// Both fill one ring buffer that feeds the decoder, and count what they lost on the way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/unwind_sink.hpp"

namespace memsight::attach {

// BPF-side losses (abi.h MS_CNT_*), summed over CPUs.
struct BpfLosses {
  uint64_t ringbuf_full = 0;
  uint64_t inflight_full = 0;  // exact: calls in flight not remembered; growth: faults not remembered
  uint64_t stack_truncated = 0;
  uint64_t inflight_stale = 0;
  uint64_t nested = 0;
  uint64_t stack_failed = 0;
  uint64_t sampled_full = 0;  // taken blocks not recorded: the table of taken blocks was full
  uint64_t no_sampler = 0;    // calls not recorded: a thread's sampler state could not be made
  // Records the probes could not write, or calls they could not record: the snapshot's lost.events.
  uint64_t unrecorded() const { return ringbuf_full + inflight_full + sampled_full + no_sampler; }
  uint64_t unwind_stopped = 0;         // call-frame walks that stopped on code they have no rule for
  uint64_t unwind_frame_pointers = 0;  // stacks walked by frame pointers, in whole or in part (a module without a table)
};

class EventSource {
 public:
  virtual ~EventSource() = default;
  // Waits up to timeout_ms for a wake-up, then drains everything waiting. Returns records consumed.
  virtual Result<int> poll(int timeout_ms) = 0;
  // Drains everything waiting without blocking.
  virtual Result<int> drain() = 0;
  virtual BpfLosses losses() const = 0;
  // Notes from start-up (tracepoints that did not attach), for the user.
  virtual const std::vector<std::string>& notes() const = 0;
  // Where the call-frame tables of traced modules go (null: this source walks no tables).
  virtual core::UnwindSink* unwind_sink() { return nullptr; }
};

}  // namespace memsight::attach
