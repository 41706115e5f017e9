// What a Recorder keeps in memory between writes: the connection, the lock, and per stack what it last
// wrote, so an unchanged stack writes nothing and counts become per-interval deltas.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/verdict.hpp"
#include "file_lock.hpp"
#include "sqlite.hpp"
#include "store.hpp"

namespace memsight::store {

struct StackMemo {
  int64_t id = 0;            // stack.id
  bool has_symbols = false;  // stack_frame rows exist
  bool present = false;      // its last sample row says it was live (not a gone marker)
  uint64_t bytes = 0;        // outstanding bytes and allocations as last written
  uint64_t count = 0;
  // Cumulative counters as last seen in a snapshot (0 in a new session): deltas are taken from these.
  uint64_t allocs = 0;
  uint64_t frees = 0;
  uint64_t allocated_bytes = 0;
  bool changed_since_detail = false;
  bool has_detail = false;
  core::VerdictKind detail_kind = core::VerdictKind::kUndecided;
  uint64_t detail_unix_ns = 0;  // time of its last detail row
  uint64_t detail_hash = 0;     // of its last detail row's evidence (0 in a new session)
  uint64_t seen_in = 0;         // the last write (RecorderCaches::writes) whose snapshot had it
};

using StackKey = std::pair<uint32_t, uint64_t>;  // (pid, stack_id)

struct RecorderCaches {
  std::map<StackKey, StackMemo> stacks;
  std::unordered_map<std::string, int64_t> frames;   // frame content key -> frame.id
  std::unordered_map<std::string, int64_t> cgroups;  // cgroup path -> cgroup.id
  uint64_t last_unix_ns = 0;                         // the newest interval's time
  uint64_t writes = 0;                               // write() calls so far
};

// What a failed write must undo in the caches besides the rolled-back transaction: each memo as it
// was before the write first touched it (empty: it was new), and the frames and cgroups it added.
struct CacheUndo {
  std::vector<std::pair<StackKey, std::optional<StackMemo>>> stacks;
  std::vector<std::string> frames, cgroups;
  void apply(RecorderCaches& caches);
};

struct Recorder::State {
  State(std::string p, Retention r, FileLock l)
      : path(std::move(p)), retention(std::move(r)), lock(std::move(l)) {}
  std::string path;
  Retention retention;
  FileLock lock;  // declared before db: released after the connection is closed
  std::unique_ptr<Db> db;
  RecorderCaches caches;
};

// Builds every cache from the database (at open; a new session: cumulative counters start at 0).
Result<void> load_caches(Db& db, RecorderCaches& caches);
// Reloads the frame and cgroup caches only (after compaction deleted some).
Result<void> load_shared(Db& db, RecorderCaches& caches);

// A frame's identity for deduplication: every field, nulls distinct from empty strings.
std::string frame_key(const core::Frame& frame);

// Downsampling and retention (compact.cpp), inside the caller's transaction.
Result<void> compact_tiers(Db& db, const Retention& retention, uint64_t now_unix_ns);
struct Dropped {
  std::vector<int64_t> stacks;  // stack.id of the stacks deleted (their memos must go)
  bool shared = false;          // frames or cgroups deleted (reload them)
};
Result<Dropped> apply_retention(Db& db, const Retention& retention, uint64_t now_unix_ns);

}  // namespace memsight::store
