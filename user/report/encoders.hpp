// Encoders of a snapshot whose frames are resolved, for other tools: folded stacks (flamegraph.pl,
// inferno, speedscope), pprof's profile.proto (go tool pprof, Pyroscope, Grafana), and the Prometheus
// text exposition format 0.0.4 (what `record --metrics` serves at /metrics).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/frame.hpp"
#include "core/snapshot.hpp"

namespace memsight::report {

// Which of a stack's numbers a folded line carries.
enum class FoldedValue {
  kOutstandingBytes,   // live bytes (the default: what a leak hunt looks at)
  kOutstandingAllocs,  // live blocks
  kAllocatedBytes,     // bytes allocated since the stack was first seen, freed or not
  kAllocs,             // allocations since the stack was first seen
};

// "outstanding_bytes", "outstanding_allocs", "allocated_bytes", "allocs"; empty for anything else.
std::optional<FoldedValue> parse_folded_value(std::string_view name);

// One line per distinct stack, frames outermost first joined by ';', a space, the value. Lines with the
// same frames are merged (summed); stacks whose value is 0 are left out. With more than one process in
// the snapshot, "comm (pid)" is the outermost frame; a stack cut at the frame limit starts at
// "[truncated]". Sorted, each line ends with a newline.
std::string render_folded(const core::Snapshot& snap, FoldedValue value = FoldedValue::kOutstandingBytes);

// A gzipped profile.proto: sample types inuse_space/bytes, inuse_objects/count, alloc_space/bytes,
// alloc_objects/count (default inuse_space); one sample per stack, labelled "pid" (number) and
// "verdict" (string). Binary; write it to a file as it is.
std::string render_pprof(const core::Snapshot& snap);

// The recorder's own health, for its /metrics.
struct RecorderStats {
  uint64_t records_decoded = 0;    // ring-buffer records decoded and delivered
  uint64_t records_rejected = 0;   // truncated, mis-sized or of an unknown kind
  uint64_t snapshots_written = 0;  // to the history database
};

// What /metrics shows besides the snapshot.
struct MetricsExtras {
  size_t top_stacks = 20;  // stacks with their own series, biggest first: bounds label cardinality
  uint64_t oom_kills = 0;  // OOM kills seen since start
  std::optional<RecorderStats> recorder;
};

// Every metric `memsight_`-prefixed with # HELP and # TYPE; see prometheus.cpp for the list.
std::string render_prometheus(const core::Snapshot& snap, const MetricsExtras& extras = {});

// Shared by the encoders.

// The row's named frames (innermost first, inlined expansions included), or, before they are resolved,
// one bare-address frame per raw address.
std::vector<core::Frame> stack_frames(const core::StackRow& row);

// A frame as one token of text: its function name, or 0x... when unknown.
std::string frame_name(const core::Frame& frame);

// The allocating function: the first frame after the allocator entry that is not inlined (the caller
// of malloc, say), or the allocator entry itself when the stack has nothing more.
std::string leaf_name(const core::StackRow& row);

}  // namespace memsight::report
