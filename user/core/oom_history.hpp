// What memsight knew before an OOM kill or an allocation failure: the history the explainer weighs
// against the facts of the moment (diagnosis.md). Filled by `record` from its own intervals and its
// tracker; empty for a victim memsight never traced (then only the facts at the kill speak).
//
// Times, Sample::time_ns included, are wall-clock nanoseconds here (the clock of
// OomFacts::time_unix_ns); every series is oldest first.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "snapshot.hpp"
#include "verdict.hpp"

namespace memsight::core {

// A memory cgroup's accounting, sampled once per interval.
struct CgroupPoint {
  uint64_t time_unix_ns = 0;
  CgroupMemory memory;
};

// One process seen by the recorder.
struct ProcessTrend {
  uint32_t pid = 0;
  std::string comm;
  std::optional<std::string> cgroup;  // memory cgroup path at its last sample
  bool traced = false;                // its allocator was probed: `heap` means something
  std::vector<Sample> heap;       // traced outstanding bytes
  std::vector<Sample> rss_anon;   // anonymous resident bytes (/proc)
};

// One call stack of a process in the domain, as the tracker held it at the kill.
struct StackEvidence {
  StackRow row;                    // outstanding bytes, verdict (judged at the kill), frames and symbols
  uint64_t recent_bytes = 0;       // of the live bytes, those born in the last `recent_ns` before the kill
  uint64_t largest_recent_block = 0;  // the biggest single live block born then (bytes)
};

struct OomHistory {
  uint64_t recording_since_unix_ns = 0;  // when the recorder started watching
  uint64_t recent_ns = 10'000'000'000;   // the longest "last seconds" before the kill (burst rule)
  std::vector<CgroupPoint> domain;       // the domain cgroup's accounting (empty: not sampled)
  std::vector<ProcessTrend> processes;   // the victim and the other processes of its domain
  std::vector<StackEvidence> stacks;     // stacks of those processes, largest first
  bool short_history = false;            // stack verdicts rest on fewer samples than a trace would want
};

}  // namespace memsight::core
