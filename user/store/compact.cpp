// Downsampling. Rows older than tier k-1's until_s move to tier k: within each bucket of resolution_s
// (aligned on the unix clock) only the last interval stays, and each stack's rows in the bucket merge
// into one row there, holding the bucket's end state plus its floor and peak:
//
//   intervals   t1   t2   t3   t4   t5 | (bucket of 5)        sample rows are change points: a stack
//   stack A     100       250       90 |  ->  t5: 90, min 90, max 250 (and 100 was carried in from
//   stack B     (no rows: stable)      |  ->  nothing           before: included when t1 has no row)
//
// Tier 1 takes its rows from the recent tables (a range scan in time) and writes them to the archive
// (keyed by stack), so the per-stack pages are dirtied once a minute, not every second. Deeper tiers
// work within the archive, one seek per stack per batch.
#include <algorithm>
#include <map>

#include "rows.hpp"

namespace memsight::store {
namespace {

constexpr uint64_t kNsPerS = 1'000'000'000;
constexpr uint64_t kBatchSpanS = 3600;  // at most this much history per batch (per transaction)

struct Bucket {
  std::vector<IntervalRef> intervals;  // oldest first; the last one is kept
  int64_t first() const { return intervals.front().id; }
  int64_t keep() const { return intervals.back().id; }
  uint64_t keep_t() const { return intervals.back().t; }
};

// The complete buckets of the next batch: those ending at or before `limit_ns` that still hold an
// interval of a finer tier.
Result<std::vector<Bucket>> next_buckets(Db& db, size_t tier, uint64_t res_ns, uint64_t limit_ns) {
  auto first = db.cached("SELECT min(t_unix_ns) FROM interval WHERE tier < ?1 AND t_unix_ns < ?2");
  if (!first) return tl::unexpected(first.error());
  auto row = (*first)->bind(1, uint64_t{tier}).bind(2, limit_ns).step();
  if (!row) return tl::unexpected(row.error());
  if ((*first)->is_null(0)) return std::vector<Bucket>{};
  const uint64_t start = (*first)->u64(0) / res_ns * res_ns;
  const uint64_t end = std::min(limit_ns, start + std::max(res_ns, kBatchSpanS * kNsPerS) / res_ns * res_ns);
  auto list = db.cached(
      "SELECT id, t_unix_ns FROM interval WHERE t_unix_ns >= ?1 AND t_unix_ns < ?2 ORDER BY t_unix_ns");
  if (!list) return tl::unexpected(list.error());
  (*list)->bind(1, start).bind(2, end);
  std::vector<Bucket> buckets;
  for (;;) {
    auto r = (*list)->step();
    if (!r) return tl::unexpected(r.error());
    if (!*r) break;
    const IntervalRef ref{static_cast<int64_t>((*list)->u64(0)), (*list)->u64(1)};
    if (buckets.empty() || buckets.back().intervals.back().t / res_ns != ref.t / res_ns)
      buckets.emplace_back();
    buckets.back().intervals.push_back(ref);
  }
  return buckets;
}

// A stack's rows in one bucket merged into one row at the kept interval; empty when the stack was absent
// all along (no row needed).
std::optional<SampleRow> merge_bucket(const std::vector<SampleRow>& rows,
                                      const std::optional<SampleRow>& carried, const Bucket& b) {
  uint64_t lo = UINT64_MAX, hi = 0;
  bool seen = false;
  const auto add = [&](uint64_t min, uint64_t max) {
    lo = std::min(lo, min), hi = std::max(hi, max), seen = true;
  };
  if (rows.front().interval > b.first() && carried && carried->bytes) add(*carried->bytes, *carried->bytes);
  SampleRow m = rows.back();
  m.allocs = m.frees = m.allocated_bytes = 0;
  for (const auto& r : rows) {
    const uint64_t bytes = r.bytes.value_or(0);
    if (r.bytes || r.min_bytes) add(r.min_bytes.value_or(bytes), r.max_bytes.value_or(bytes));
    m.allocs += r.allocs, m.frees += r.frees, m.allocated_bytes += r.allocated_bytes;
  }
  if (m.oldest_age_ms) *m.oldest_age_ms += (b.keep_t() - rows.back().t) / 1'000'000;
  m.interval = b.keep(), m.t = b.keep_t();
  m.min_bytes = m.max_bytes = std::nullopt;
  if (!seen && !m.bytes) {
    // Gone throughout: a marker is needed only if it was live before the bucket.
    if (!(carried && carried->bytes)) return std::nullopt;
    return m;
  }
  if (!(m.bytes && lo == hi && lo == *m.bytes)) m.min_bytes = lo, m.max_bytes = hi;
  return m;
}

bool unchanged(const std::vector<SampleRow>& rows, bool from_archive, const std::optional<SampleRow>& merged,
               const Bucket& b) {
  return from_archive && merged && rows.size() == 1 && rows[0].interval == b.keep() &&
         rows[0].min_bytes == merged->min_bytes && rows[0].max_bytes == merged->max_bytes;
}

// One stack's rows of the batch (archive and, for tier 1, recent), oldest first.
Result<std::vector<SampleRow>> stack_rows(Db& db, int64_t stack, const std::vector<Bucket>& buckets,
                                          const std::vector<SampleRow>& recent) {
  auto rows = sample_rows(db, stack, buckets.front().first(), buckets.back().keep());
  if (!rows) return rows;
  if (recent.empty()) return rows;
  std::vector<SampleRow> all;
  std::merge(rows->begin(), rows->end(), recent.begin(), recent.end(), std::back_inserter(all),
             [](const SampleRow& a, const SampleRow& b) { return a.interval < b.interval; });
  return all;
}

Result<void> compact_stack(Db& db, int64_t stack, const std::vector<Bucket>& buckets,
                           const std::vector<SampleRow>& recent) {
  auto rows = stack_rows(db, stack, buckets, recent);
  if (!rows) return tl::unexpected(rows.error());
  if (rows->empty()) return {};
  auto carried = sample_before(db, stack, buckets.front().first());
  if (!carried) return tl::unexpected(carried.error());
  size_t next = 0;
  for (const Bucket& b : buckets) {
    std::vector<SampleRow> in;
    while (next < rows->size() && (*rows)[next].interval <= b.keep()) in.push_back((*rows)[next++]);
    if (in.empty()) continue;
    const auto merged = merge_bucket(in, *carried, b);
    if (!unchanged(in, recent.empty(), merged, b)) {
      if (auto ok = delete_samples(db, stack, b.first(), b.keep()); !ok) return ok;
      if (merged)
        if (auto ok = insert_sample(db, *merged); !ok) return ok;
    }
    if (merged) *carried = merged;
  }
  return {};
}

// Tier 1: the recent details of the batch into the archive, then (every tier) one per stack per bucket.
Result<void> compact_details(Db& db, const std::vector<Bucket>& buckets, const std::vector<int64_t>& stacks,
                             bool from_recent) {
  if (from_recent) {
    auto details = recent_details(db, buckets.front().first(), buckets.back().keep());
    if (!details) return tl::unexpected(details.error());
    for (const auto& d : *details)
      if (auto ok = insert_detail(db, d); !ok) return ok;
  }
  for (int64_t stack : stacks)
    for (const Bucket& b : buckets)
      if (auto ok = keep_last_detail(db, stack, b.first(), b.keep()); !ok) return ok;
  return {};
}

Result<void> compact_processes(Db& db, const Bucket& b) {
  if (b.intervals.size() == 1) return {};
  auto rows = process_rows(db, b.first(), b.keep());
  if (!rows) return tl::unexpected(rows.error());
  std::map<uint32_t, ProcessSampleRow> merged;  // pid -> the bucket's last row, with peaks
  for (const auto& r : *rows) {
    auto [it, inserted] = merged.try_emplace(r.pid, r);
    if (!inserted) it->second = merge_process(it->second, r);
  }
  if (auto ok = delete_range(db, "process_sample", b.first(), b.keep()); !ok) return ok;
  for (auto& [pid, row] : merged) {
    row.interval = b.keep();
    if (auto ok = insert_process(db, finish_process(row)); !ok) return ok;
  }
  return {};
}

Result<void> compact_intervals(Db& db, size_t tier, const Bucket& b) {
  auto drop = db.cached("DELETE FROM interval WHERE id >= ?1 AND id < ?2");
  if (!drop) return tl::unexpected(drop.error());
  if (auto ok = (*drop)->bind(1, b.first()).bind(2, b.keep()).run(); !ok) return ok;
  auto mark = db.cached("UPDATE interval SET tier = ?1 WHERE id = ?2");
  if (!mark) return tl::unexpected(mark.error());
  return (*mark)->bind(1, uint64_t{tier}).bind(2, b.keep()).run();
}

}  // namespace

Result<size_t> compact_tier_batch(Db& db, size_t tier, const Tier& spec, uint64_t horizon_ns) {
  const uint64_t res_ns = spec.resolution_s * kNsPerS;
  auto buckets = next_buckets(db, tier, res_ns, horizon_ns / res_ns * res_ns);
  if (!buckets) return tl::unexpected(buckets.error());
  if (buckets->empty()) return 0;
  const int64_t first = buckets->front().first(), last = buckets->back().keep();
  std::map<int64_t, std::vector<SampleRow>> recent;  // stack -> its tier-0 rows in the batch
  if (tier == 1) {
    auto rows = recent_rows(db, first, last);
    if (!rows) return tl::unexpected(rows.error());
    for (auto& r : *rows) recent[r.stack].push_back(std::move(r));
  }
  auto stacks = all_stacks(db);
  if (!stacks) return tl::unexpected(stacks.error());
  static const std::vector<SampleRow> kNone;
  for (int64_t stack : *stacks) {
    const auto it = recent.find(stack);
    if (auto ok = compact_stack(db, stack, *buckets, it == recent.end() ? kNone : it->second); !ok)
      return tl::unexpected(ok.error());
  }
  if (auto ok = compact_details(db, *buckets, *stacks, tier == 1); !ok) return tl::unexpected(ok.error());
  if (tier == 1)
    for (const char* table : {"sample_recent", "detail_recent"})
      if (auto ok = delete_range(db, table, first, last); !ok) return tl::unexpected(ok.error());
  for (const Bucket& b : *buckets) {
    if (auto ok = compact_processes(db, b); !ok) return tl::unexpected(ok.error());
    if (auto ok = compact_intervals(db, tier, b); !ok) return tl::unexpected(ok.error());
  }
  return buckets->size();
}

}  // namespace memsight::store
