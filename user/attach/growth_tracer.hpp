// The only code that touches libbpf for growth mode: load growth_trace.bpf.c, attach its tracepoints
// (page faults, the anonymous-memory counter, a few syscalls, exec/fork/exit), choose whom it traces,
// drain its ring buffer into the decoder, read its loss counters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attach/event_source.hpp"
#include "attach/ring_reader.hpp"
#include "attach/trace_options.hpp"
#include "attach/unwind_maps.hpp"
#include "core/decoder.hpp"
#include "core/error.hpp"

struct growth_trace;
struct bpf_link;

namespace memsight::attach {

// Without `all` or a cgroup, add_target() names the processes traced.
struct GrowthOptions : TraceOptions {
  uint64_t cgroup_id = 0;     // or: the processes of this memory cgroup (directory inode) and below
  uint32_t cgroup_level = 0;  // its depth in the hierarchy
};

class GrowthTracer final : public EventSource {
 public:
  static Result<std::unique_ptr<GrowthTracer>> open(const GrowthOptions& options, core::Decoder& decoder);
  ~GrowthTracer() override;

  // Traces `pid` and, from now on, the processes it forks.
  Result<void> add_target(uint32_t pid);
  Result<int> poll(int timeout_ms) override { return ring_.poll(timeout_ms); }
  Result<int> drain() override { return ring_.drain(); }
  BpfLosses losses() const override;
  const std::vector<std::string>& notes() const override { return notes_; }
  core::UnwindSink* unwind_sink() override { return unwind_.get(); }

 private:
  explicit GrowthTracer(growth_trace* skel) : skel_(skel) {}
  Result<void> attach_all();

  growth_trace* skel_ = nullptr;
  RingReader ring_;
  std::vector<bpf_link*> links_;
  std::vector<std::string> notes_;
  std::unique_ptr<UnwindMaps> unwind_;
};

}  // namespace memsight::attach
