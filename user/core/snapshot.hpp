// A snapshot: what the tracker holds at one moment, as rows reporters render and the store keeps.
// Rows carry raw addresses; `symbols` is filled once (report::resolve_frames, or from the store), and
// every renderer reads it from there.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "frame.hpp"
#include "verdict.hpp"

namespace memsight::core {

struct SnapshotOptions {
  uint64_t min_age_ns = 0;  // count only blocks at least this old (0: all)
  size_t top = 0;           // keep this many stack rows (0: all)
  bool whole_trace = false;  // growth over all the time each stack was seen (the final snapshot),
                             // not since the previous snapshot
};

struct StackRow {
  uint64_t stack_id = 0;
  uint32_t pid = 0;
  uint64_t outstanding_bytes = 0;  // live bytes (with min_age: only blocks old enough)
  uint64_t outstanding_allocs = 0;
  uint64_t allocated_bytes = 0;  // cumulative since the stack was first seen
  uint64_t allocs = 0;
  uint64_t frees = 0;
  std::optional<double> oldest_age_s;  // age of the oldest live block; empty when none is live
  double growth_bytes_per_s = 0;       // change of outstanding bytes per second (see whole_trace)
  std::vector<uint64_t> frames;        // addresses: [0] allocator entry, [1] direct caller, ...
  bool truncated = false;
  std::vector<Frame> symbols;          // the frames named, inlined expansions included; empty until resolved
  Verdict verdict;
  std::vector<Epoch> epochs;           // birth-epoch histogram from the stack's first birth, oldest first
  uint64_t epoch_ns = 0;               // the length of one epoch
};

// A memory cgroup's accounting (v1 or v2), read when the snapshot was taken. Empty: not known.
struct CgroupMemory {
  std::string path;  // as in /proc/PID/cgroup, relative to the controller's mount
  std::optional<uint64_t> usage_bytes;
  std::optional<uint64_t> limit_bytes;  // empty when unlimited
  std::optional<uint64_t> anon_bytes;
  std::optional<uint64_t> file_bytes;   // page cache
  std::optional<uint64_t> shmem_bytes;
  std::optional<uint64_t> kernel_bytes;  // slab, stacks, page tables
  std::optional<uint64_t> sock_bytes;
};

struct ProcessRow {
  uint32_t pid = 0;
  uint64_t outstanding_bytes = 0;
  uint64_t outstanding_allocs = 0;
  uint64_t unmatched_frees = 0;
  bool exited = false;
  // Filled by the caller from the live process (empty once it has exited).
  std::optional<std::string> comm;
  std::optional<uint64_t> rss_anon_bytes;
  std::optional<CgroupMemory> cgroup;
  std::optional<std::string> container_id;  // when the cgroup's path names a container
};

// Losses, all always present (the JSON contract's `lost`), plus the detail behind them.
struct LostCounts {
  uint64_t events = 0;            // records that never reached the tracker (ring full, table full, rejected)
  uint64_t unmatched_frees = 0;   // releases of memory never seen born (allocated before attach)
  uint64_t truncated_stacks = 0;  // stacks cut at the frame limit
  uint64_t refused_blocks = 0;    // births not tracked: the tracker held its cap of live blocks (--max-blocks)
};

struct Snapshot {
  uint64_t time_ns = 0;       // CLOCK_MONOTONIC of the moment it describes
  uint64_t time_unix_ns = 0;  // the same moment on the wall clock (filled by the caller)
  std::vector<ProcessRow> processes;
  std::vector<StackRow> stacks;
  LostCounts lost;
  // --sample-bytes: the mean gap between sample points, bytes; then every byte and allocation count is
  // an estimate (sampler.hpp). Empty: exact.
  std::optional<uint64_t> sample_bytes;
};

}  // namespace memsight::core
