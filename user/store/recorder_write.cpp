// Recorder::write: one interval in one transaction. On failure the transaction rolls back and the
// in-memory caches return to what they were, so the next interval writes as if this one never came.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "codec.hpp"
#include "recorder_state.hpp"

namespace memsight::store {
namespace {

constexpr uint64_t kNsPerS = 1'000'000'000;

constexpr const char* kInsertInterval =
    "INSERT INTO interval (t_unix_ns, mono_ns, interval_s, mode, tier, lost_events, lost_unmatched_frees, "
    "lost_truncated_stacks) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7)";
constexpr const char* kInsertProcess =
    "INSERT OR REPLACE INTO process_sample (interval, pid, comm, exited, heap_bytes, heap_allocs, "
    "unmatched_frees, "
    "rss_anon_bytes, cgroup, cg_usage_bytes, cg_limit_bytes, cg_anon_bytes, cg_file_bytes, cg_shmem_bytes, "
    "cg_kernel_bytes, cg_sock_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
    "?15, ?16)";
constexpr const char* kInsertCgroup = "INSERT INTO cgroup (path) VALUES (?1)";
constexpr const char* kInsertStack =
    "INSERT INTO stack (pid, stack_id, truncated, addresses) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kInsertFrame =
    "INSERT INTO frame (address, function, module, file, line, inlined) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr const char* kInsertStackFrame =
    "INSERT OR REPLACE INTO stack_frame (stack, pos, frame) VALUES (?1, ?2, ?3)";
// Tier 0 goes to the tables keyed (interval, stack): appended at the end of their B-trees.
constexpr const char* kInsertSample =
    "INSERT OR REPLACE INTO sample_recent (stack, interval, outstanding_bytes, outstanding_allocs, allocs, "
    "frees, "
    "allocated_bytes, oldest_age_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr const char* kInsertDetail =
    "INSERT OR REPLACE INTO detail_recent (stack, interval, verdict, floor_slope_bytes_per_s, survival, "
    "epochs_alive, "
    "verdict_samples, why, epoch_ns, epochs) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

// A cumulative counter's growth since it was last seen; a counter that went back restarted from 0.
uint64_t delta(uint64_t now, uint64_t before) {
  return now >= before ? now - before : now;
}

class IntervalWriter {
 public:
  IntervalWriter(Db& db, RecorderCaches& caches, CacheUndo& undo, const Retention& retention, uint64_t t,
                 int64_t interval, bool final)
      : db_(db),
        caches_(caches),
        undo_(undo),
        retention_(retention),
        t_(t),
        interval_(interval),
        final_(final) {}

  Result<void> process(const core::ProcessRow& row);
  Result<void> stack(const core::StackRow& row);
  Result<void> gone();  // gone markers for the stacks live before and absent now

 private:
  Result<int64_t> cgroup_id(const std::string& path);
  Result<int64_t> frame_id(const core::Frame& frame);
  Result<void> frames(int64_t stack, const std::vector<core::Frame>& symbols);
  Result<StackMemo*> memo(const core::StackRow& row);
  Result<void> detail(StackMemo& memo, const core::StackRow& row);

  Db& db_;
  RecorderCaches& caches_;
  CacheUndo& undo_;
  const Retention& retention_;
  uint64_t t_;
  int64_t interval_;
  bool final_;  // the recording's last interval: every stack's latest evidence is written
};

Result<int64_t> IntervalWriter::cgroup_id(const std::string& path) {
  if (auto it = caches_.cgroups.find(path); it != caches_.cgroups.end()) return it->second;
  auto insert = db_.cached(kInsertCgroup);
  if (!insert) return tl::unexpected(insert.error());
  if (auto ok = (*insert)->bind(1, std::string_view(path)).run(); !ok) return tl::unexpected(ok.error());
  undo_.cgroups.push_back(path);
  return caches_.cgroups[path] = db_.last_insert_rowid();
}

Result<void> IntervalWriter::process(const core::ProcessRow& row) {
  std::optional<int64_t> cgroup;
  const core::CgroupMemory empty;
  const core::CgroupMemory& cg = row.cgroup ? *row.cgroup : empty;
  if (row.cgroup) {
    auto id = cgroup_id(cg.path);
    if (!id) return tl::unexpected(id.error());
    cgroup = *id;
  }
  auto s = db_.cached(kInsertProcess);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, interval_).bind(2, row.pid).bind(3, row.comm).bind(4, uint64_t{row.exited});
  (*s)->bind(5, row.outstanding_bytes).bind(6, row.outstanding_allocs).bind(7, row.unmatched_frees);
  (*s)->bind(8, row.rss_anon_bytes).bind(9, cgroup).bind(10, cg.usage_bytes).bind(11, cg.limit_bytes);
  (*s)->bind(12, cg.anon_bytes).bind(13, cg.file_bytes).bind(14, cg.shmem_bytes).bind(15, cg.kernel_bytes);
  (*s)->bind(16, cg.sock_bytes);
  return (*s)->run();
}

Result<int64_t> IntervalWriter::frame_id(const core::Frame& frame) {
  const std::string key = frame_key(frame);
  if (auto it = caches_.frames.find(key); it != caches_.frames.end()) return it->second;
  auto s = db_.cached(kInsertFrame);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, frame.address).bind(2, frame.function).bind(3, frame.module).bind(4, frame.file);
  if (frame.line) (*s)->bind(5, uint64_t{*frame.line});
  if (auto ok = (*s)->bind(6, uint64_t{frame.inlined}).run(); !ok) return tl::unexpected(ok.error());
  undo_.frames.push_back(key);
  return caches_.frames[key] = db_.last_insert_rowid();
}

Result<void> IntervalWriter::frames(int64_t stack, const std::vector<core::Frame>& symbols) {
  for (size_t pos = 0; pos < symbols.size(); ++pos) {
    auto id = frame_id(symbols[pos]);
    if (!id) return tl::unexpected(id.error());
    auto s = db_.cached(kInsertStackFrame);
    if (!s) return tl::unexpected(s.error());
    if (auto ok = (*s)->bind(1, stack).bind(2, uint64_t{pos}).bind(3, *id).run(); !ok) return ok;
  }
  return {};
}

// The stack's memo, its `stack` row (and frames) written on first sight; frames again if they were
// unknown then and are named now.
Result<StackMemo*> IntervalWriter::memo(const core::StackRow& row) {
  auto [it, inserted] = caches_.stacks.try_emplace({row.pid, row.stack_id});
  StackMemo& m = it->second;
  undo_.stacks.emplace_back(it->first, inserted ? std::nullopt : std::optional(m));
  m.seen_in = caches_.writes;
  if (inserted) {
    auto s = db_.cached(kInsertStack);
    if (!s) return tl::unexpected(s.error());
    (*s)->bind(1, row.pid).bind(2, row.stack_id).bind(3, uint64_t{row.truncated});
    if (auto ok = (*s)->bind(4, std::string_view(encode_addresses(row.frames))).run(); !ok)
      return tl::unexpected(ok.error());
    m.id = db_.last_insert_rowid();
  }
  if (!m.has_symbols && !row.symbols.empty()) {
    if (auto ok = frames(m.id, row.symbols); !ok) return tl::unexpected(ok.error());
    m.has_symbols = true;
  }
  return &m;
}

// A new verdict kind is written at once; new evidence when the stack changed and the cadence allows,
// or in the final interval; the same evidence again, never.
Result<void> IntervalWriter::detail(StackMemo& m, const core::StackRow& row) {
  const core::Verdict& v = row.verdict;
  const bool new_kind = !m.has_detail || m.detail_kind != v.kind;
  const bool due =
      m.changed_since_detail && t_ - m.detail_unix_ns >= retention_.tiers.front().detail_s * kNsPerS;
  if (!new_kind && !due && !final_) return {};
  const std::vector<uint8_t> epochs = encode_epochs(row.epochs);
  const std::string evidence = fmt::format(
      "{}|{}|{}|{}|{}|{}|{}", v.floor_slope_bytes_per_s, v.survival.value_or(-1), v.epochs_alive, v.samples,
      v.why, row.epoch_ns, std::string_view(reinterpret_cast<const char*>(epochs.data()), epochs.size()));
  const uint64_t hash = std::hash<std::string>{}(evidence);
  if (!new_kind && hash == m.detail_hash) return {};
  auto s = db_.cached(kInsertDetail);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, m.id).bind(2, interval_).bind(3, std::string_view(core::verdict_name(v.kind)));
  (*s)->bind(4, v.floor_slope_bytes_per_s).bind(5, v.survival).bind(6, v.epochs_alive);
  (*s)->bind(7, uint64_t{v.samples}).bind(8, std::string_view(v.why)).bind(9, row.epoch_ns);
  if (auto ok = (*s)->bind_blob(10, epochs).run(); !ok) return ok;
  m.has_detail = true;
  m.detail_kind = v.kind;
  m.detail_unix_ns = t_;
  m.detail_hash = hash;
  m.changed_since_detail = false;
  return {};
}

Result<void> IntervalWriter::stack(const core::StackRow& row) {
  auto found = memo(row);
  if (!found) return tl::unexpected(found.error());
  StackMemo& m = **found;
  const uint64_t allocs = delta(row.allocs, m.allocs), frees = delta(row.frees, m.frees);
  const uint64_t allocated = delta(row.allocated_bytes, m.allocated_bytes);
  m.allocs = row.allocs, m.frees = row.frees, m.allocated_bytes = row.allocated_bytes;
  const bool changed = !m.present || row.outstanding_bytes != m.bytes || row.outstanding_allocs != m.count ||
                       allocs || frees || allocated;
  if (changed) {
    std::optional<uint64_t> age_ms;
    if (row.oldest_age_s)
      age_ms = static_cast<uint64_t>(std::llround(std::max(0.0, *row.oldest_age_s) * 1e3));
    auto s = db_.cached(kInsertSample);
    if (!s) return tl::unexpected(s.error());
    (*s)->bind(1, m.id).bind(2, interval_).bind(3, row.outstanding_bytes).bind(4, row.outstanding_allocs);
    if (auto ok = (*s)->bind(5, allocs).bind(6, frees).bind(7, allocated).bind(8, age_ms).run(); !ok)
      return ok;
    m.present = true, m.bytes = row.outstanding_bytes, m.count = row.outstanding_allocs;
    m.changed_since_detail = true;
  }
  return detail(m, row);
}

Result<void> IntervalWriter::gone() {
  for (auto& [key, m] : caches_.stacks) {
    if (!m.present || m.seen_in == caches_.writes) continue;
    undo_.stacks.emplace_back(key, m);
    auto s = db_.cached(kInsertSample);
    if (!s) return tl::unexpected(s.error());
    (*s)->bind(1, m.id).bind(2, interval_).bind_null(3).bind_null(4);
    if (auto ok = (*s)->bind(5, uint64_t{0}).bind(6, uint64_t{0}).bind(7, uint64_t{0}).bind_null(8).run();
        !ok)
      return ok;
    m.present = false;
  }
  return {};
}

Result<void> write_interval(Db& db, RecorderCaches& caches, CacheUndo& undo, const Retention& retention,
                            const core::Snapshot& snap, const IntervalMeta& meta) {
  auto tx = Transaction::begin(db, true);
  if (!tx) return tl::unexpected(tx.error());
  auto s = db.cached(kInsertInterval);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, snap.time_unix_ns)
      .bind(2, snap.time_ns)
      .bind(3, meta.interval_s)
      .bind(4, std::string_view(meta.mode));
  (*s)->bind(5, snap.lost.events).bind(6, snap.lost.unmatched_frees).bind(7, snap.lost.truncated_stacks);
  if (auto ok = (*s)->run(); !ok) return ok;
  IntervalWriter writer(db, caches, undo, retention, snap.time_unix_ns, db.last_insert_rowid(), meta.final);
  for (const auto& p : snap.processes)
    if (auto ok = writer.process(p); !ok) return ok;
  for (const auto& row : snap.stacks)
    if (auto ok = writer.stack(row); !ok) return ok;
  if (auto ok = writer.gone(); !ok) return ok;
  return tx->commit();
}

}  // namespace

void CacheUndo::apply(RecorderCaches& caches) {
  for (auto it = stacks.rbegin(); it != stacks.rend(); ++it) {
    if (it->second)
      caches.stacks[it->first] = *it->second;
    else
      caches.stacks.erase(it->first);
  }
  for (const auto& key : frames) caches.frames.erase(key);
  for (const auto& path : cgroups) caches.cgroups.erase(path);
}

std::string frame_key(const core::Frame& f) {
  const auto text = [](const std::optional<std::string>& s) {
    return s ? fmt::format("{}:{}", s->size(), *s) : std::string("-");
  };
  return fmt::format("{:x}|{}|{}|{}|{}|{}", f.address, text(f.function), text(f.module), text(f.file),
                     f.line ? std::to_string(*f.line) : "-", f.inlined ? 1 : 0);
}

Result<void> Recorder::write(const core::Snapshot& snap, const IntervalMeta& meta) {
  State& st = *state_;
  if (snap.time_unix_ns <= st.caches.last_unix_ns)
    return fail(
        ExitCode::kRuntime,
        fmt::format("{}: interval at {} ns is not after the last one recorded ({} ns): the wall clock "
                    "went back",
                    st.path, snap.time_unix_ns, st.caches.last_unix_ns));
  CacheUndo undo;
  ++st.caches.writes;
  auto ok = write_interval(*st.db, st.caches, undo, st.retention, snap, meta);
  if (!ok) {
    undo.apply(st.caches);
    return ok;
  }
  st.caches.last_unix_ns = snap.time_unix_ns;
  return {};
}

}  // namespace memsight::store
