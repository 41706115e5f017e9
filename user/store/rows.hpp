// The rows that compaction, retention and the reader move around, and the statements that read and
// write them. "Archive" is `sample`/`detail` (keyed by stack, then interval: seeks per stack); "recent"
// is `sample_recent`/`detail_recent` (keyed by interval: range scans in time).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "sqlite.hpp"
#include "store.hpp"

namespace memsight::store {

struct IntervalRef {
  int64_t id = 0;
  uint64_t t = 0;  // unix ns
};

// A sample row of either table; `t` is its interval's time.
struct SampleRow {
  int64_t stack = 0;
  int64_t interval = 0;
  uint64_t t = 0;
  std::optional<uint64_t> bytes, count;          // empty: a gone marker
  std::optional<uint64_t> min_bytes, max_bytes;  // empty: both equal `bytes`
  uint64_t allocs = 0, frees = 0, allocated_bytes = 0;
  std::optional<uint64_t> oldest_age_ms;
};

struct DetailRow {
  int64_t stack = 0;
  int64_t interval = 0;
  std::string verdict;
  double floor_slope_bytes_per_s = 0;
  std::optional<double> survival;
  double epochs_alive = 0;
  uint64_t verdict_samples = 0;
  std::string why;
  uint64_t epoch_ns = 0;
  std::vector<uint8_t> epochs;
};

// A `process_sample` row.
struct ProcessSampleRow {
  int64_t interval = 0;
  uint32_t pid = 0;
  std::optional<std::string> comm;
  uint64_t exited = 0;
  uint64_t heap_bytes = 0, heap_allocs = 0;
  std::optional<uint64_t> heap_min_bytes, heap_max_bytes;
  uint64_t unmatched_frees = 0;
  std::optional<uint64_t> rss_anon_bytes, rss_anon_max_bytes;
  std::optional<int64_t> cgroup;
  std::optional<uint64_t> cg_usage_bytes, cg_usage_max_bytes, cg_limit_bytes, cg_anon_bytes, cg_file_bytes,
      cg_shmem_bytes, cg_kernel_bytes, cg_sock_bytes;
};

Result<std::vector<int64_t>> all_stacks(Db& db);

// Archive samples of one stack.
Result<std::optional<SampleRow>> sample_before(Db& db, int64_t stack, int64_t before);
Result<std::vector<SampleRow>> sample_rows(Db& db, int64_t stack, int64_t first, int64_t last);
Result<void> delete_samples(Db& db, int64_t stack, int64_t first, int64_t last);
Result<void> insert_sample(Db& db, const SampleRow& row);

// Recent samples with interval in [first, last], by interval then stack.
Result<std::vector<SampleRow>> recent_rows(Db& db, int64_t first, int64_t last);
// Every stack's row in force at interval `at` (its latest at or before it, in either table).
Result<std::map<int64_t, SampleRow>> rows_at(Db& db, int64_t at, const std::vector<int64_t>& stacks);

// Archive details of one stack: of those in [first, last], keeps the newest, moved to `last`.
Result<void> keep_last_detail(Db& db, int64_t stack, int64_t first, int64_t last);
Result<void> insert_detail(Db& db, const DetailRow& row);
Result<std::vector<DetailRow>> recent_details(Db& db, int64_t first, int64_t last);
// Every stack's latest detail at or before `at`, in either table.
Result<std::map<int64_t, DetailRow>> details_at(Db& db, int64_t at, const std::vector<int64_t>& stacks);

// Deletes rows with interval in [first, last] from a table keyed by interval first.
Result<void> delete_range(Db& db, const char* table, int64_t first, int64_t last);

Result<std::vector<ProcessSampleRow>> process_rows(Db& db, int64_t first, int64_t last);
Result<void> insert_process(Db& db, const ProcessSampleRow& row);
// `later` with the floor and peaks of both.
ProcessSampleRow merge_process(const ProcessSampleRow& earlier, const ProcessSampleRow& later);
// Peaks equal to the value itself become empty (NULL costs nothing).
ProcessSampleRow finish_process(ProcessSampleRow row);

// compact.cpp: one batch of a tier; returns the buckets compacted (0: up to date).
Result<size_t> compact_tier_batch(Db& db, size_t tier, const Tier& spec, uint64_t horizon_ns);
// prune.cpp: keeps one archive detail row per stack per detail_s bucket, for rows older than `horizon_ns`.
Result<void> thin_details(Db& db, size_t tier, const Tier& spec, uint64_t horizon_ns);

}  // namespace memsight::store
