// Thinning of detail rows, the retention bound, and Recorder::compact that runs them with the tiers.
#include <set>

#include "recorder_state.hpp"
#include "rows.hpp"

namespace memsight::store {
namespace {

constexpr uint64_t kNsPerS = 1'000'000'000;

Result<std::optional<uint64_t>> meta_u64(Db& db, const std::string& key) {
  auto s = db.cached("SELECT value FROM meta WHERE key = ?1");
  if (!s) return tl::unexpected(s.error());
  auto row = (*s)->bind(1, std::string_view(key)).step();
  if (!row) return tl::unexpected(row.error());
  if (!*row) return std::optional<uint64_t>();
  return std::optional<uint64_t>(std::stoull((*s)->text(0)));
}

Result<void> set_meta(Db& db, const std::string& key, uint64_t value) {
  auto s = db.cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)");
  if (!s) return tl::unexpected(s.error());
  return (*s)->bind(1, std::string_view(key)).bind(2, std::string_view(std::to_string(value))).run();
}

// The ids of the intervals with t in [from, to): empty when none.
Result<std::optional<std::pair<int64_t, int64_t>>> id_range(Db& db, uint64_t from, uint64_t to) {
  auto s = db.cached("SELECT min(id), max(id) FROM interval WHERE t_unix_ns >= ?1 AND t_unix_ns < ?2");
  if (!s) return tl::unexpected(s.error());
  auto row = (*s)->bind(1, from).bind(2, to).step();
  if (!row) return tl::unexpected(row.error());
  using Range = std::optional<std::pair<int64_t, int64_t>>;
  if ((*s)->is_null(0)) return Range();
  return Range(std::pair{static_cast<int64_t>((*s)->u64(0)), static_cast<int64_t>((*s)->u64(1))});
}

Result<void> thin_stack_details(Db& db, int64_t stack, std::pair<int64_t, int64_t> ids, uint64_t width_ns) {
  auto s = db.cached(
      "SELECT d.interval, i.t_unix_ns FROM detail d JOIN interval i ON i.id = d.interval "
      "WHERE d.stack = ?1 AND d.interval >= ?2 AND d.interval <= ?3 ORDER BY d.interval DESC");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, stack).bind(2, ids.first).bind(3, ids.second);
  std::vector<int64_t> drop;
  std::optional<uint64_t> bucket;  // of the newer row just seen: older rows in it go
  for (;;) {
    auto row = (*s)->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    const uint64_t b = (*s)->u64(1) / width_ns;
    if (bucket == b) drop.push_back(static_cast<int64_t>((*s)->u64(0)));
    bucket = b;
  }
  (*s)->reset();
  for (int64_t interval : drop) {
    auto del = db.cached("DELETE FROM detail WHERE stack = ?1 AND interval = ?2");
    if (!del) return tl::unexpected(del.error());
    if (auto ok = (*del)->bind(1, stack).bind(2, interval).run(); !ok) return ok;
  }
  return {};
}

// A live stack keeps its state and last detail at the first interval kept, so that dropping what is
// older never makes it look absent. Then the stacks' older archive rows go (by primary key).
Result<void> carry_forward(Db& db, const std::vector<int64_t>& stacks, const IntervalRef& first) {
  auto before = rows_at(db, first.id - 1, stacks);
  if (!before) return tl::unexpected(before.error());
  auto at = rows_at(db, first.id, stacks);
  if (!at) return tl::unexpected(at.error());
  auto details = details_at(db, first.id, stacks);
  if (!details) return tl::unexpected(details.error());
  for (auto& [stack, row] : *before) {
    if (!row.bytes || (*at)[stack].interval == first.id) continue;
    if (row.oldest_age_ms) *row.oldest_age_ms += (first.t - row.t) / 1'000'000;
    row.interval = first.id, row.t = first.t;
    row.min_bytes = row.max_bytes = std::nullopt;
    row.allocs = row.frees = row.allocated_bytes = 0;
    if (auto ok = insert_sample(db, row); !ok) return ok;
  }
  for (auto& [stack, detail] : *details) {
    if (detail.interval == first.id) continue;
    detail.interval = first.id;
    if (auto ok = insert_detail(db, detail); !ok) return ok;
  }
  for (const char* sql : {"DELETE FROM sample WHERE stack = ?1 AND interval < ?2",
                          "DELETE FROM detail WHERE stack = ?1 AND interval < ?2"})
    for (int64_t stack : stacks) {
      auto del = db.cached(sql);
      if (!del) return tl::unexpected(del.error());
      if (auto ok = (*del)->bind(1, stack).bind(2, first.id).run(); !ok) return ok;
    }
  return {};
}

// Stacks without any sample row left, then frames and cgroups nothing refers to.
Result<Dropped> collect_garbage(Db& db) {
  Dropped dropped;
  auto empty = db.cached(
      "SELECT id FROM stack WHERE NOT EXISTS (SELECT 1 FROM sample WHERE stack = stack.id) "
      "AND id NOT IN (SELECT stack FROM sample_recent)");
  if (!empty) return tl::unexpected(empty.error());
  for (;;) {
    auto row = (*empty)->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    dropped.stacks.push_back(static_cast<int64_t>((*empty)->u64(0)));
  }
  (*empty)->reset();
  for (int64_t id : dropped.stacks)
    for (const char* sql :
         {"DELETE FROM detail WHERE stack = ?1", "DELETE FROM detail_recent WHERE stack = ?1",
          "DELETE FROM stack_frame WHERE stack = ?1", "DELETE FROM stack WHERE id = ?1"}) {
      auto del = db.cached(sql);
      if (!del) return tl::unexpected(del.error());
      if (auto ok = (*del)->bind(1, id).run(); !ok) return tl::unexpected(ok.error());
    }
  const char* kOrphanFrames =
      "DELETE FROM frame WHERE NOT EXISTS (SELECT 1 FROM stack_frame WHERE frame = frame.id)";
  const char* kOrphanCgroups =
      "DELETE FROM cgroup WHERE NOT EXISTS (SELECT 1 FROM process_sample WHERE cgroup = cgroup.id)";
  if (!dropped.stacks.empty()) {  // frames can only be orphaned by stacks going
    if (auto ok = db.exec(kOrphanFrames); !ok) return tl::unexpected(ok.error());
    dropped.shared = db.changes() > 0;
  }
  if (auto ok = db.exec(kOrphanCgroups); !ok) return tl::unexpected(ok.error());
  dropped.shared = dropped.shared || db.changes() > 0;
  return dropped;
}

}  // namespace

Result<void> thin_details(Db& db, size_t tier, const Tier& spec, uint64_t horizon_ns) {
  const uint64_t width_ns = spec.detail_s * kNsPerS;
  const uint64_t limit = horizon_ns / width_ns * width_ns;
  const std::string key = "details_thinned_unix_ns." + std::to_string(tier);
  auto done = meta_u64(db, key);
  if (!done) return tl::unexpected(done.error());
  const uint64_t from = done->value_or(0);
  if (limit <= from) return {};
  auto ids = id_range(db, from, limit);
  if (!ids) return tl::unexpected(ids.error());
  if (*ids) {
    auto stacks = all_stacks(db);
    if (!stacks) return tl::unexpected(stacks.error());
    for (int64_t stack : *stacks)
      if (auto ok = thin_stack_details(db, stack, **ids, width_ns); !ok) return ok;
  }
  return set_meta(db, key, limit);
}

Result<Dropped> apply_retention(Db& db, const Retention& retention, uint64_t now_unix_ns) {
  const uint64_t total_ns = retention.total_s * kNsPerS;
  if (now_unix_ns <= total_ns) return Dropped{};
  const uint64_t horizon = now_unix_ns - total_ns;
  auto old = id_range(db, 0, horizon);
  if (!old) return tl::unexpected(old.error());
  if (!*old) return Dropped{};
  auto first =
      db.cached("SELECT id, t_unix_ns FROM interval WHERE t_unix_ns >= ?1 ORDER BY t_unix_ns LIMIT 1");
  if (!first) return tl::unexpected(first.error());
  auto row = (*first)->bind(1, horizon).step();
  if (!row) return tl::unexpected(row.error());
  // Nothing newer than the horizon: everything goes (an id past the last one drops all rows).
  const bool any_kept = *row;
  const IntervalRef keep = any_kept ? IntervalRef{static_cast<int64_t>((*first)->u64(0)), (*first)->u64(1)}
                                    : IntervalRef{(*old)->second + 1, horizon};
  (*first)->reset();
  std::vector<const char*> tables = {"sample_recent", "detail_recent", "process_sample"};
  if (any_kept) {
    auto stacks = all_stacks(db);
    if (!stacks) return tl::unexpected(stacks.error());
    if (auto ok = carry_forward(db, *stacks, keep); !ok) return tl::unexpected(ok.error());
  } else {
    tables.insert(tables.end(), {"sample", "detail"});
  }
  for (const char* table : tables)
    if (auto ok = delete_range(db, table, 0, keep.id - 1); !ok) return tl::unexpected(ok.error());
  auto del = db.cached("DELETE FROM interval WHERE id < ?1");
  if (!del) return tl::unexpected(del.error());
  if (auto ok = (*del)->bind(1, keep.id).run(); !ok) return tl::unexpected(ok.error());
  return collect_garbage(db);
}

namespace {

// Tier k's batches, then its details thinned (after the batches: tier 1 brings details in).
Result<void> compact_tier(Db& db, size_t k, const Tier& spec, uint64_t horizon_ns) {
  for (;;) {  // one transaction per batch: a long catch-up never holds one huge transaction
    auto tx = Transaction::begin(db, true);
    if (!tx) return tl::unexpected(tx.error());
    auto n = compact_tier_batch(db, k, spec, horizon_ns);
    if (!n) return tl::unexpected(n.error());
    if (auto ok = tx->commit(); !ok) return ok;
    if (*n == 0) break;
  }
  auto tx = Transaction::begin(db, true);
  if (!tx) return tl::unexpected(tx.error());
  if (auto ok = thin_details(db, k, spec, horizon_ns); !ok) return ok;
  return tx->commit();
}

}  // namespace

Result<void> Recorder::compact(uint64_t now_unix_ns) {
  State& st = *state_;
  const auto& tiers = st.retention.tiers;
  for (size_t k = 1; k < tiers.size(); ++k) {
    const uint64_t age_ns = tiers[k - 1].until_s * kNsPerS;
    if (now_unix_ns > age_ns)
      if (auto ok = compact_tier(*st.db, k, tiers[k], now_unix_ns - age_ns); !ok) return ok;
  }
  auto tx = Transaction::begin(*st.db, true);
  if (!tx) return tl::unexpected(tx.error());
  auto dropped = apply_retention(*st.db, st.retention, now_unix_ns);
  if (!dropped) return tl::unexpected(dropped.error());
  if (auto ok = tx->commit(); !ok) return ok;
  const std::set<int64_t> gone(dropped->stacks.begin(), dropped->stacks.end());
  std::erase_if(st.caches.stacks, [&](const auto& entry) { return gone.count(entry.second.id) > 0; });
  if (dropped->shared) return load_shared(*st.db, st.caches);
  return {};
}

}  // namespace memsight::store
