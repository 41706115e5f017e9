// The SQLite history of `memsight record` (schema in docs/store.md, "memsight.db/1").
//
//   Recorder::write(snapshot)  one transaction per interval: an `interval` row, a `process_sample` row per
//        │                     process, a `sample_recent` row per stack *that changed* (a stable stack
//        │                     costs nothing), a `detail_recent` row (verdict + epochs) now and then
//        ▼
//   Recorder::compact(now)     downsampling by tiers (1 s for 10 min, 10 s for 2 h, 1 min beyond; each
//                              coarse row, in `sample`/`detail`, keeps the floor and the peak), then
//                              the retention bound
//   Reader                     reads while a recorder writes (WAL); refuses other files and future schemas
//
// One recorder per file: it holds an exclusive flock(2) on `FILE.lock` for its lifetime; readers need none.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/snapshot.hpp"

namespace memsight::store {

inline constexpr const char* kSchemaName = "memsight.db/1";
inline constexpr int kSchemaVersion = 1;

// One resolution of the history. Tier 0 is what the recorder writes; older rows move to tier 1, ...
struct Tier {
  uint64_t resolution_s = 1;  // at most one row per stack (and per process) per this many seconds
  uint64_t until_s = 600;     // rows older than this (seconds before `now`) move to the next tier
  // At most one verdict/epochs row per stack per this many seconds. In tier 0: how often a changing
  // stack's are written (a new verdict kind: at once).
  uint64_t detail_s = 60;
};

struct Retention {
  // Each resolution_s a multiple of the previous one, each detail_s a multiple of its resolution_s,
  // until_s increasing. The last tier's until_s is not used: total_s bounds everything.
  std::vector<Tier> tiers = {{1, 600, 60}, {10, 2 * 3600, 600}, {60, 48 * 3600, 3600}};
  uint64_t total_s = 48 * 3600;  // rows older than this are dropped

  // "48h", "90m", "2d", "3600" or "3600s": the total; the tiers stay the defaults.
  static Result<Retention> parse(std::string_view text);
  Result<void> validate() const;
};

struct IntervalMeta {
  double interval_s = 1;
  std::string mode = "exact";
  // The recording's last interval: every stack's latest verdict and epochs are written (otherwise an
  // unchanged stack keeps the evidence of its last change, with its verdict kind always current).
  bool final = false;
};

// One OOM kill or failed allocation, explained when it happened (`record`), stored as the reports
// `explain` prints. Episodes are few and small: retention keeps them all.
struct EpisodeRow {
  uint64_t number = 0;  // 1, 2, ... across every recording into the file
  uint64_t time_unix_ns = 0;
  std::string kind;     // "oom_kill" or "alloc_failure"
  uint32_t pid = 0;     // the victim, or the process whose allocation failed
  std::string verdict;  // as in memsight.oom/1
  std::string json;     // the memsight.oom/1 object, one line
  std::string text;     // the text report
};

class Recorder {
 public:
  // Creates the file (0600) or continues an existing memsight database. Errors, with nothing written:
  // a missing or read-only directory, a file that is not a memsight database (or is corrupt, or of a
  // newer schema), another recorder on the same file.
  static Result<std::unique_ptr<Recorder>> open(const std::string& path, const Retention& retention);
  ~Recorder();

  // One transaction. snap.time_unix_ns names the interval; it must be later than the last one.
  Result<void> write(const core::Snapshot& snap, const IntervalMeta& meta);
  // Downsampling and retention up to `now_unix_ns`; incremental, meant to be called every minute.
  Result<void> compact(uint64_t now_unix_ns);
  // The number the next episode gets (one more than the file's last).
  Result<uint64_t> next_episode();
  Result<void> write_episode(const EpisodeRow& episode);

  struct State;

 private:
  explicit Recorder(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

struct TimeRange {
  std::optional<uint64_t> from_unix_ns, to_unix_ns;
};

// The stored span of a database.
struct Span {
  uint64_t first_unix_ns = 0;
  uint64_t last_unix_ns = 0;
  uint64_t intervals = 0;  // rows kept in `interval` (after downsampling)
};

// One stored row of a stack's history: the state from the previous row until the next one.
struct SeriesPoint {
  uint64_t time_unix_ns = 0;
  std::optional<uint64_t> bytes;  // outstanding at time_unix_ns; empty: the stack was gone
  uint64_t min_bytes = 0;         // floor and peak since the previous kept interval (both 0 when gone
  uint64_t max_bytes = 0;         // throughout)
  uint64_t allocs = 0;            // since the stack's previous row
  uint64_t frees = 0;
};

class Reader {
 public:
  static Result<std::unique_ptr<Reader>> open(const std::string& path);
  ~Reader();

  // The snapshot at `to` (the latest interval at or before it; default: the last one), optionally of
  // one pid: processes, and the stacks live then (sorted by outstanding bytes, descending) with their
  // symbols, last verdict and epochs. Counts (allocs, frees, allocated_bytes) and growth_bytes_per_s
  // cover (from, to]; `from` defaults to the interval before `to` and snaps to the latest interval at
  // or before it. A `from` before the history counts all of it (growth then runs from its first
  // interval).
  Result<core::Snapshot> snapshot(const TimeRange& range, std::optional<uint32_t> pid = std::nullopt);
  Result<std::vector<uint32_t>> pids();
  Result<Span> span();
  // The stored rows of one stack's outstanding bytes, oldest first, from the row in force at `from`
  // to the last at or before `to` (the OOM explainer's input). A stable stack has few rows: each
  // holds until the next.
  Result<std::vector<SeriesPoint>> series(uint32_t pid, uint64_t stack_id, const TimeRange& range);
  // Stored episodes, oldest first; optionally only one number or one pid's.
  Result<std::vector<EpisodeRow>> episodes(std::optional<uint64_t> number = std::nullopt,
                                           std::optional<uint32_t> pid = std::nullopt);

  struct State;

 private:
  explicit Reader(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace memsight::store
