#include "rows.hpp"

#include <algorithm>

namespace memsight::store {
namespace {

#define MEMSIGHT_SAMPLE_COLUMNS                                                                             \
  "s.stack, s.interval, i.t_unix_ns, s.outstanding_bytes, s.outstanding_allocs, s.min_bytes, s.max_bytes, " \
  "s.allocs, s.frees, s.allocated_bytes, s.oldest_age_ms "
#define MEMSIGHT_RECENT_COLUMNS                                                                         \
  "s.stack, s.interval, i.t_unix_ns, s.outstanding_bytes, s.outstanding_allocs, NULL, NULL, s.allocs, " \
  "s.frees, "                                                                                           \
  "s.allocated_bytes, s.oldest_age_ms "
#define MEMSIGHT_DETAIL_COLUMNS                                                                       \
  "stack, interval, verdict, floor_slope_bytes_per_s, survival, epochs_alive, verdict_samples, why, " \
  "epoch_ns, "                                                                                        \
  "epochs "

constexpr const char* kSampleBefore =
    "SELECT " MEMSIGHT_SAMPLE_COLUMNS
    "FROM sample s JOIN interval i ON i.id = s.interval "
    "WHERE s.stack = ?1 AND s.interval < ?2 ORDER BY s.interval DESC LIMIT 1";
constexpr const char* kSampleRange =
    "SELECT " MEMSIGHT_SAMPLE_COLUMNS
    "FROM sample s JOIN interval i ON i.id = s.interval "
    "WHERE s.stack = ?1 AND s.interval >= ?2 AND s.interval <= ?3 ORDER BY s.interval";
constexpr const char* kInsertSample =
    "INSERT OR REPLACE INTO sample (stack, interval, outstanding_bytes, outstanding_allocs, min_bytes, "
    "max_bytes, "
    "allocs, frees, allocated_bytes, oldest_age_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr const char* kRecentRange =
    "SELECT " MEMSIGHT_RECENT_COLUMNS
    "FROM sample_recent s JOIN interval i ON i.id = s.interval "
    "WHERE s.interval >= ?1 AND s.interval <= ?2 ORDER BY s.interval, s.stack";
constexpr const char* kRecentDown = "SELECT " MEMSIGHT_RECENT_COLUMNS
                                    "FROM sample_recent s JOIN interval i ON i.id = s.interval "
                                    "WHERE s.interval <= ?1 ORDER BY s.interval DESC";
constexpr const char* kDetailBefore =
    "SELECT " MEMSIGHT_DETAIL_COLUMNS
    "FROM detail WHERE stack = ?1 AND interval <= ?2 ORDER BY interval DESC LIMIT 1";
constexpr const char* kRecentDetailDown =
    "SELECT " MEMSIGHT_DETAIL_COLUMNS "FROM detail_recent WHERE interval <= ?1 ORDER BY interval DESC";
constexpr const char* kRecentDetailRange = "SELECT " MEMSIGHT_DETAIL_COLUMNS
                                           "FROM detail_recent WHERE interval >= ?1 AND interval <= ?2 "
                                           "ORDER BY interval, stack";
constexpr const char* kInsertDetail = "INSERT OR REPLACE INTO detail (" MEMSIGHT_DETAIL_COLUMNS
                                      ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

#undef MEMSIGHT_SAMPLE_COLUMNS
#undef MEMSIGHT_RECENT_COLUMNS
#undef MEMSIGHT_DETAIL_COLUMNS

SampleRow read_sample(const Statement& s) {
  SampleRow r;
  r.stack = static_cast<int64_t>(s.u64(0));
  r.interval = static_cast<int64_t>(s.u64(1));
  r.t = s.u64(2);
  r.bytes = s.opt_u64(3), r.count = s.opt_u64(4), r.min_bytes = s.opt_u64(5), r.max_bytes = s.opt_u64(6);
  r.allocs = s.u64(7), r.frees = s.u64(8), r.allocated_bytes = s.u64(9);
  r.oldest_age_ms = s.opt_u64(10);
  return r;
}

DetailRow read_detail(const Statement& s) {
  DetailRow d;
  d.stack = static_cast<int64_t>(s.u64(0));
  d.interval = static_cast<int64_t>(s.u64(1));
  d.verdict = s.text(2), d.floor_slope_bytes_per_s = s.real(3), d.survival = s.opt_real(4);
  d.epochs_alive = s.real(5), d.verdict_samples = s.u64(6), d.why = s.text(7), d.epoch_ns = s.u64(8);
  d.epochs = s.blob(9);
  return d;
}

// Every row a statement returns, read by `read`.
template <typename Row>
Result<std::vector<Row>> collect(Borrowed& s, Row (*read)(const Statement&)) {
  std::vector<Row> rows;
  for (;;) {
    auto row = s->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return rows;
    rows.push_back(read(*s));
  }
}

// Scans a recent table down from `at`, keeping the first (newest) row of each wanted stack; stops
// once every one is found.
template <typename Row>
Result<std::map<int64_t, Row>> newest_recent(Db& db, const char* sql, int64_t at,
                                             const std::vector<int64_t>& stacks,
                                             Row (*read)(const Statement&)) {
  std::map<int64_t, Row> found;
  auto s = db.cached(sql);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, at);
  while (found.size() < stacks.size()) {
    auto row = (*s)->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    const auto stack = static_cast<int64_t>((*s)->u64(0));
    if (!found.count(stack) && std::binary_search(stacks.begin(), stacks.end(), stack))
      found.emplace(stack, read(**s));
  }
  return found;
}

std::optional<uint64_t> peak(std::optional<uint64_t> a, std::optional<uint64_t> b) {
  if (!a) return b;
  if (!b) return a;
  return std::max(*a, *b);
}

}  // namespace

Result<std::vector<int64_t>> all_stacks(Db& db) {
  auto s = db.cached("SELECT id FROM stack ORDER BY id");
  if (!s) return tl::unexpected(s.error());
  return collect<int64_t>(*s, [](const Statement& q) { return static_cast<int64_t>(q.u64(0)); });
}

Result<std::optional<SampleRow>> sample_before(Db& db, int64_t stack, int64_t before) {
  auto s = db.cached(kSampleBefore);
  if (!s) return tl::unexpected(s.error());
  auto row = (*s)->bind(1, stack).bind(2, before).step();
  if (!row) return tl::unexpected(row.error());
  if (!*row) return std::optional<SampleRow>();
  return read_sample(**s);
}

Result<std::vector<SampleRow>> sample_rows(Db& db, int64_t stack, int64_t first, int64_t last) {
  auto s = db.cached(kSampleRange);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, stack).bind(2, first).bind(3, last);
  return collect(*s, read_sample);
}

Result<void> delete_samples(Db& db, int64_t stack, int64_t first, int64_t last) {
  auto s = db.cached("DELETE FROM sample WHERE stack = ?1 AND interval >= ?2 AND interval <= ?3");
  if (!s) return tl::unexpected(s.error());
  return (*s)->bind(1, stack).bind(2, first).bind(3, last).run();
}

Result<void> insert_sample(Db& db, const SampleRow& r) {
  auto s = db.cached(kInsertSample);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, r.stack).bind(2, r.interval).bind(3, r.bytes).bind(4, r.count).bind(5, r.min_bytes);
  (*s)->bind(6, r.max_bytes).bind(7, r.allocs).bind(8, r.frees).bind(9, r.allocated_bytes);
  return (*s)->bind(10, r.oldest_age_ms).run();
}

Result<std::vector<SampleRow>> recent_rows(Db& db, int64_t first, int64_t last) {
  auto s = db.cached(kRecentRange);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, first).bind(2, last);
  return collect(*s, read_sample);
}

Result<std::map<int64_t, SampleRow>> rows_at(Db& db, int64_t at, const std::vector<int64_t>& stacks) {
  auto found = newest_recent(db, kRecentDown, at, stacks, read_sample);
  if (!found) return found;
  for (int64_t stack : stacks) {
    // "at or before at": before at + 1, which can't pass the largest interval id
    auto archived = sample_before(db, stack, at == INT64_MAX ? at : at + 1);
    if (!archived) return tl::unexpected(archived.error());
    if (!*archived) continue;
    auto it = found->find(stack);
    if (it == found->end() || it->second.interval < (*archived)->interval) (*found)[stack] = **archived;
  }
  return found;
}

Result<void> keep_last_detail(Db& db, int64_t stack, int64_t first, int64_t last) {
  auto newest =
      db.cached("SELECT max(interval) FROM detail WHERE stack = ?1 AND interval >= ?2 AND interval <= ?3");
  if (!newest) return tl::unexpected(newest.error());
  auto row = (*newest)->bind(1, stack).bind(2, first).bind(3, last).step();
  if (!row) return tl::unexpected(row.error());
  if ((*newest)->is_null(0)) return {};
  const int64_t keep = static_cast<int64_t>((*newest)->u64(0));
  auto drop = db.cached("DELETE FROM detail WHERE stack = ?1 AND interval >= ?2 AND interval < ?3");
  if (!drop) return tl::unexpected(drop.error());
  if (auto ok = (*drop)->bind(1, stack).bind(2, first).bind(3, keep).run(); !ok) return ok;
  if (keep == last) return {};
  auto move = db.cached("UPDATE detail SET interval = ?3 WHERE stack = ?1 AND interval = ?2");
  if (!move) return tl::unexpected(move.error());
  return (*move)->bind(1, stack).bind(2, keep).bind(3, last).run();
}

Result<void> insert_detail(Db& db, const DetailRow& d) {
  auto s = db.cached(kInsertDetail);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, d.stack)
      .bind(2, d.interval)
      .bind(3, std::string_view(d.verdict))
      .bind(4, d.floor_slope_bytes_per_s);
  (*s)->bind(5, d.survival)
      .bind(6, d.epochs_alive)
      .bind(7, d.verdict_samples)
      .bind(8, std::string_view(d.why));
  return (*s)->bind(9, d.epoch_ns).bind_blob(10, d.epochs).run();
}

Result<std::vector<DetailRow>> recent_details(Db& db, int64_t first, int64_t last) {
  auto s = db.cached(kRecentDetailRange);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, first).bind(2, last);
  return collect(*s, read_detail);
}

Result<std::map<int64_t, DetailRow>> details_at(Db& db, int64_t at, const std::vector<int64_t>& stacks) {
  auto found = newest_recent(db, kRecentDetailDown, at, stacks, read_detail);
  if (!found) return found;
  auto s = db.cached(kDetailBefore);
  if (!s) return tl::unexpected(s.error());
  for (int64_t stack : stacks) {
    (*s)->reset();
    auto row = (*s)->bind(1, stack).bind(2, at).step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) continue;
    auto it = found->find(stack);
    if (it == found->end() || it->second.interval < static_cast<int64_t>((*s)->u64(1)))
      (*found)[stack] = read_detail(**s);
  }
  return found;
}

Result<void> delete_range(Db& db, const char* table, int64_t first, int64_t last) {
  return db.exec("DELETE FROM " + std::string(table) + " WHERE interval >= " + std::to_string(first) +
                 " AND interval <= " + std::to_string(last));
}

Result<std::vector<ProcessSampleRow>> process_rows(Db& db, int64_t first, int64_t last) {
  auto s = db.cached(
      "SELECT interval, pid, comm, exited, heap_bytes, heap_allocs, heap_min_bytes, heap_max_bytes, "
      "unmatched_frees, "
      "rss_anon_bytes, rss_anon_max_bytes, cgroup, cg_usage_bytes, cg_usage_max_bytes, cg_limit_bytes, "
      "cg_anon_bytes, "
      "cg_file_bytes, cg_shmem_bytes, cg_kernel_bytes, cg_sock_bytes FROM process_sample "
      "WHERE interval >= ?1 AND interval <= ?2 ORDER BY interval, pid");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, first).bind(2, last);
  return collect<ProcessSampleRow>(*s, [](const Statement& q) {
    ProcessSampleRow r;
    r.interval = static_cast<int64_t>(q.u64(0));
    r.pid = static_cast<uint32_t>(q.u64(1));
    r.comm = q.opt_text(2), r.exited = q.u64(3), r.heap_bytes = q.u64(4), r.heap_allocs = q.u64(5);
    r.heap_min_bytes = q.opt_u64(6), r.heap_max_bytes = q.opt_u64(7), r.unmatched_frees = q.u64(8);
    r.rss_anon_bytes = q.opt_u64(9), r.rss_anon_max_bytes = q.opt_u64(10);
    if (!q.is_null(11)) r.cgroup = static_cast<int64_t>(q.u64(11));
    r.cg_usage_bytes = q.opt_u64(12), r.cg_usage_max_bytes = q.opt_u64(13), r.cg_limit_bytes = q.opt_u64(14);
    r.cg_anon_bytes = q.opt_u64(15), r.cg_file_bytes = q.opt_u64(16), r.cg_shmem_bytes = q.opt_u64(17);
    r.cg_kernel_bytes = q.opt_u64(18), r.cg_sock_bytes = q.opt_u64(19);
    return r;
  });
}

Result<void> insert_process(Db& db, const ProcessSampleRow& r) {
  auto s = db.cached(
      "INSERT OR REPLACE INTO process_sample (interval, pid, comm, exited, heap_bytes, heap_allocs, "
      "heap_min_bytes, "
      "heap_max_bytes, unmatched_frees, rss_anon_bytes, rss_anon_max_bytes, cgroup, cg_usage_bytes, "
      "cg_usage_max_bytes, cg_limit_bytes, cg_anon_bytes, cg_file_bytes, cg_shmem_bytes, cg_kernel_bytes, "
      "cg_sock_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
      "?18, ?19, "
      "?20)");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, r.interval).bind(2, r.pid).bind(3, r.comm).bind(4, r.exited).bind(5, r.heap_bytes);
  (*s)->bind(6, r.heap_allocs).bind(7, r.heap_min_bytes).bind(8, r.heap_max_bytes).bind(9, r.unmatched_frees);
  (*s)->bind(10, r.rss_anon_bytes)
      .bind(11, r.rss_anon_max_bytes)
      .bind(12, r.cgroup)
      .bind(13, r.cg_usage_bytes);
  (*s)->bind(14, r.cg_usage_max_bytes).bind(15, r.cg_limit_bytes).bind(16, r.cg_anon_bytes);
  (*s)->bind(17, r.cg_file_bytes)
      .bind(18, r.cg_shmem_bytes)
      .bind(19, r.cg_kernel_bytes)
      .bind(20, r.cg_sock_bytes);
  return (*s)->run();
}

ProcessSampleRow merge_process(const ProcessSampleRow& earlier, const ProcessSampleRow& later) {
  ProcessSampleRow m = later;
  m.heap_min_bytes = std::min(earlier.heap_min_bytes.value_or(earlier.heap_bytes),
                              later.heap_min_bytes.value_or(later.heap_bytes));
  m.heap_max_bytes = std::max(earlier.heap_max_bytes.value_or(earlier.heap_bytes),
                              later.heap_max_bytes.value_or(later.heap_bytes));
  m.rss_anon_max_bytes = peak(peak(earlier.rss_anon_max_bytes, earlier.rss_anon_bytes),
                              peak(later.rss_anon_max_bytes, later.rss_anon_bytes));
  m.cg_usage_max_bytes = peak(peak(earlier.cg_usage_max_bytes, earlier.cg_usage_bytes),
                              peak(later.cg_usage_max_bytes, later.cg_usage_bytes));
  return m;
}

ProcessSampleRow finish_process(ProcessSampleRow r) {
  if (r.heap_min_bytes == r.heap_bytes && r.heap_max_bytes == r.heap_bytes)
    r.heap_min_bytes = r.heap_max_bytes = std::nullopt;
  if (r.rss_anon_max_bytes == r.rss_anon_bytes) r.rss_anon_max_bytes = std::nullopt;
  if (r.cg_usage_max_bytes == r.cg_usage_bytes) r.cg_usage_max_bytes = std::nullopt;
  return r;
}

}  // namespace memsight::store
