#include "reader_queries.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "codec.hpp"

namespace memsight::store {
namespace {

constexpr uint64_t kLatest = INT64_MAX;  // a time after every interval (SQLite integers are signed)

constexpr const char* kAtOrBefore =
    "SELECT id, t_unix_ns FROM interval WHERE t_unix_ns <= ?1 ORDER BY t_unix_ns DESC LIMIT 1";
constexpr const char* kFirst = "SELECT id, t_unix_ns FROM interval ORDER BY t_unix_ns LIMIT 1";
constexpr const char* kPrevious = "SELECT id, t_unix_ns FROM interval WHERE id < ?1 ORDER BY id DESC LIMIT 1";
constexpr const char* kProcesses =
    "SELECT ps.pid, ps.comm, ps.exited, ps.heap_bytes, ps.heap_allocs, ps.unmatched_frees, "
    "ps.rss_anon_bytes, "
    "ps.cgroup, c.path, ps.cg_usage_bytes, ps.cg_limit_bytes, ps.cg_anon_bytes, ps.cg_file_bytes, "
    "ps.cg_shmem_bytes, "
    "ps.cg_kernel_bytes, ps.cg_sock_bytes FROM process_sample ps LEFT JOIN cgroup c ON c.id = ps.cgroup "
    "WHERE ps.interval = ?1 AND (?2 IS NULL OR ps.pid = ?2) ORDER BY ps.pid";
constexpr const char* kStacks =
    "SELECT id, pid, stack_id, truncated, addresses FROM stack WHERE (?1 IS NULL OR pid = ?1) ORDER BY id";
constexpr const char* kArchiveCounts =
    "SELECT coalesce(sum(allocs), 0), coalesce(sum(frees), 0), coalesce(sum(allocated_bytes), 0) FROM sample "
    "WHERE stack = ?1 AND interval > ?2 AND interval <= ?3";
constexpr const char* kRecentCounts =
    "SELECT stack, sum(allocs), sum(frees), sum(allocated_bytes) FROM sample_recent "
    "WHERE interval > ?1 AND interval <= ?2 GROUP BY stack";
constexpr const char* kRecentSeries =
    "SELECT s.stack, s.interval, i.t_unix_ns, s.outstanding_bytes, s.outstanding_allocs, NULL, NULL, "
    "s.allocs, "
    "s.frees, s.allocated_bytes, s.oldest_age_ms FROM sample_recent s JOIN interval i ON i.id = s.interval "
    "WHERE s.stack = ?1 AND s.interval >= ?2 AND s.interval <= ?3 ORDER BY s.interval";
constexpr const char* kFrames =
    "SELECT f.address, f.function, f.module, f.file, f.line, f.inlined FROM stack_frame sf "
    "JOIN frame f ON f.id = sf.frame WHERE sf.stack = ?1 ORDER BY sf.pos";

Result<std::optional<IntervalRef>> one_interval(Db& db, const char* sql, std::optional<uint64_t> arg) {
  auto s = db.cached(sql);
  if (!s) return tl::unexpected(s.error());
  if (arg) (*s)->bind(1, *arg);
  auto row = (*s)->step();
  if (!row) return tl::unexpected(row.error());
  if (!*row) return std::optional<IntervalRef>();
  return std::optional<IntervalRef>(IntervalRef{static_cast<int64_t>((*s)->u64(0)), (*s)->u64(1)});
}

Error no_interval(Db& db, uint64_t to) {
  auto first = one_interval(db, kFirst, std::nullopt);
  if (first && !*first) return {ExitCode::kUsage, fmt::format("{} holds no intervals yet", db.path())};
  return {ExitCode::kUsage,
          fmt::format("{} has no interval at or before {} (unix ns): its history starts at {}", db.path(), to,
                      first && *first ? (*first)->t : 0)};
}

Result<void> apply_detail(const std::string& path, const DetailRow& d, core::StackRow& row) {
  core::Verdict& v = row.verdict;
  v.kind = verdict_kind(d.verdict);
  v.floor_slope_bytes_per_s = d.floor_slope_bytes_per_s, v.survival = d.survival,
  v.epochs_alive = d.epochs_alive;
  v.samples = static_cast<size_t>(d.verdict_samples), v.why = d.why;
  row.epoch_ns = d.epoch_ns;
  auto epochs = decode_epochs(d.epochs);
  if (!epochs)
    return fail(ExitCode::kRuntime, fmt::format("{}: a damaged epoch histogram (stack {})", path, d.stack));
  row.epochs = std::move(*epochs);
  return {};
}

Result<void> read_frames(Db& db, int64_t stack, core::StackRow& row) {
  auto s = db.cached(kFrames);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, stack);
  for (;;) {
    auto found = (*s)->step();
    if (!found) return tl::unexpected(found.error());
    if (!*found) return {};
    const Statement& q = **s;
    core::Frame f{q.u64(0), q.opt_text(1), q.opt_text(2), q.opt_text(3), std::nullopt, q.u64(5) != 0};
    if (!q.is_null(4)) f.line = static_cast<uint32_t>(q.u64(4));
    row.symbols.push_back(std::move(f));
  }
}

struct Counts {
  uint64_t allocs = 0, frees = 0, allocated_bytes = 0;
};

// Births and deaths per stack in (from, to]: the recent table in one scan, the archive by seeks.
Result<std::map<int64_t, Counts>> window_counts(Db& db, const Window& w, const std::vector<int64_t>& stacks) {
  const int64_t from = w.counts_after;
  std::map<int64_t, Counts> counts;
  auto recent = db.cached(kRecentCounts);
  if (!recent) return tl::unexpected(recent.error());
  (*recent)->bind(1, from).bind(2, w.to.id);
  for (;;) {
    auto row = (*recent)->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    counts[static_cast<int64_t>((*recent)->u64(0))] =
        Counts{(*recent)->u64(1), (*recent)->u64(2), (*recent)->u64(3)};
  }
  auto archive = db.cached(kArchiveCounts);
  if (!archive) return tl::unexpected(archive.error());
  for (int64_t stack : stacks) {
    (*archive)->reset();
    auto row = (*archive)->bind(1, stack).bind(2, from).bind(3, w.to.id).step();
    if (!row) return tl::unexpected(row.error());
    Counts& c = counts[stack];
    c.allocs += (*archive)->u64(0), c.frees += (*archive)->u64(1), c.allocated_bytes += (*archive)->u64(2);
  }
  return counts;
}

struct StackInfo {
  int64_t id = 0;
  core::StackRow row;  // identity and raw frames
};

Result<std::vector<StackInfo>> stacks_of(Db& db, std::optional<uint32_t> pid) {
  auto s = db.cached(kStacks);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, pid);
  std::vector<StackInfo> out;
  for (;;) {
    auto found = (*s)->step();
    if (!found) return tl::unexpected(found.error());
    if (!*found) return out;
    const Statement& q = **s;
    StackInfo info;
    info.id = static_cast<int64_t>(q.u64(0));
    info.row.pid = static_cast<uint32_t>(q.u64(1)), info.row.stack_id = q.u64(2),
    info.row.truncated = q.u64(3) != 0;
    info.row.frames = decode_addresses(q.text(4));
    out.push_back(std::move(info));
  }
}

// The stack's state as of the window's end, with its growth across the window.
void apply_sample(const SampleRow& at, const std::optional<SampleRow>& before, const Window& w,
                  core::StackRow& row) {
  row.outstanding_bytes = at.bytes.value_or(0), row.outstanding_allocs = at.count.value_or(0);
  // The age grows from the row's time to the snapshot's, as long as the oldest block lives.
  if (at.oldest_age_ms)
    row.oldest_age_s =
        static_cast<double>(*at.oldest_age_ms) / 1e3 + static_cast<double>(w.to.t - at.t) / 1e9;
  if (!w.from || w.from->t >= w.to.t) return;
  const uint64_t from_bytes = before ? before->bytes.value_or(0) : 0;
  const double seconds = static_cast<double>(w.to.t - w.from->t) / 1e9;
  row.growth_bytes_per_s =
      (static_cast<double>(row.outstanding_bytes) - static_cast<double>(from_bytes)) / seconds;
}

}  // namespace

Result<Window> resolve_window(Db& db, const TimeRange& range) {
  if (range.from_unix_ns && range.to_unix_ns && *range.from_unix_ns > *range.to_unix_ns)
    return fail(ExitCode::kUsage, fmt::format("the range starts ({}) after it ends ({})", *range.from_unix_ns,
                                              *range.to_unix_ns));
  const uint64_t to_ns = range.to_unix_ns.value_or(kLatest);
  auto to = one_interval(db, kAtOrBefore, std::min(to_ns, kLatest));
  if (!to) return tl::unexpected(to.error());
  if (!*to) return tl::unexpected(no_interval(db, to_ns));
  Window w{**to, std::nullopt, 0};
  auto from = range.from_unix_ns ? one_interval(db, kAtOrBefore, std::min(*range.from_unix_ns, kLatest))
                                 : one_interval(db, kPrevious, static_cast<uint64_t>(w.to.id));
  if (!from) return tl::unexpected(from.error());
  if (*from) {
    w.from = *from, w.counts_after = (*from)->id;
  } else if (range.from_unix_ns) {
    // Before the history: counts cover all of it up to `to`; growth runs from its first interval (the
    // earliest state known: inventing zero bytes before it would make every stack look like it grew).
    auto first = one_interval(db, kFirst, std::nullopt);
    if (!first) return tl::unexpected(first.error());
    w.from = *first;
  }
  return w;
}

Result<void> read_interval(Db& db, const IntervalRef& at, core::Snapshot& snap) {
  auto s = db.cached(
      "SELECT mono_ns, lost_events, lost_unmatched_frees, lost_truncated_stacks FROM interval WHERE id = ?1");
  if (!s) return tl::unexpected(s.error());
  auto row = (*s)->bind(1, at.id).step();
  if (!row) return tl::unexpected(row.error());
  snap.time_unix_ns = at.t;
  if (!*row) return {};
  snap.time_ns = (*s)->u64(0);
  snap.lost = core::LostCounts{(*s)->u64(1), (*s)->u64(2), (*s)->u64(3)};
  return {};
}

Result<std::vector<core::ProcessRow>> read_processes(Db& db, int64_t interval, std::optional<uint32_t> pid) {
  auto s = db.cached(kProcesses);
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, interval).bind(2, pid);
  std::vector<core::ProcessRow> out;
  for (;;) {
    auto found = (*s)->step();
    if (!found) return tl::unexpected(found.error());
    if (!*found) return out;
    const Statement& q = **s;
    core::ProcessRow p;
    p.pid = static_cast<uint32_t>(q.u64(0));
    p.comm = q.opt_text(1), p.exited = q.u64(2) != 0, p.outstanding_bytes = q.u64(3);
    p.outstanding_allocs = q.u64(4), p.unmatched_frees = q.u64(5), p.rss_anon_bytes = q.opt_u64(6);
    if (!q.is_null(7)) {
      core::CgroupMemory cg;
      cg.path = q.text(8);
      cg.usage_bytes = q.opt_u64(9), cg.limit_bytes = q.opt_u64(10), cg.anon_bytes = q.opt_u64(11);
      cg.file_bytes = q.opt_u64(12), cg.shmem_bytes = q.opt_u64(13), cg.kernel_bytes = q.opt_u64(14);
      cg.sock_bytes = q.opt_u64(15);
      p.cgroup = std::move(cg);
    }
    out.push_back(std::move(p));
  }
}

Result<std::vector<core::StackRow>> read_stacks(Db& db, const Window& w, std::optional<uint32_t> pid) {
  auto stacks = stacks_of(db, pid);
  if (!stacks) return tl::unexpected(stacks.error());
  std::vector<int64_t> ids;
  for (const auto& s : *stacks) ids.push_back(s.id);
  auto at = rows_at(db, w.to.id, ids);
  if (!at) return tl::unexpected(at.error());
  std::vector<int64_t> live;
  for (int64_t id : ids)
    if (auto it = at->find(id); it != at->end() && it->second.bytes) live.push_back(id);
  auto before = w.from ? rows_at(db, w.from->id, live) : std::map<int64_t, SampleRow>();
  if (!before) return tl::unexpected(before.error());
  auto counts = window_counts(db, w, live);
  if (!counts) return tl::unexpected(counts.error());
  auto details = details_at(db, w.to.id, live);
  if (!details) return tl::unexpected(details.error());
  std::vector<core::StackRow> out;
  for (auto& info : *stacks) {
    if (!std::binary_search(live.begin(), live.end(), info.id)) continue;
    core::StackRow& row = info.row;
    const auto from = before->find(info.id);
    apply_sample(at->at(info.id), from == before->end() ? std::nullopt : std::optional(from->second), w, row);
    const Counts& c = (*counts)[info.id];
    row.allocs = c.allocs, row.frees = c.frees, row.allocated_bytes = c.allocated_bytes;
    if (auto d = details->find(info.id); d != details->end())
      if (auto ok = apply_detail(db.path(), d->second, row); !ok) return tl::unexpected(ok.error());
    if (auto ok = read_frames(db, info.id, row); !ok) return tl::unexpected(ok.error());
    out.push_back(std::move(row));
  }
  return out;
}

Result<std::vector<SeriesPoint>> read_series(Db& db, uint32_t pid, uint64_t stack_id,
                                             const TimeRange& range) {
  auto find = db.cached("SELECT id FROM stack WHERE pid = ?1 AND stack_id = ?2");
  if (!find) return tl::unexpected(find.error());
  auto found = (*find)->bind(1, pid).bind(2, stack_id).step();
  if (!found) return tl::unexpected(found.error());
  if (!*found)
    return fail(ExitCode::kUsage, fmt::format("{} holds no stack {:#x} of pid {}", db.path(), stack_id, pid));
  const int64_t stack = static_cast<int64_t>((*find)->u64(0));
  auto from = one_interval(db, kAtOrBefore, std::min(range.from_unix_ns.value_or(0), kLatest));
  if (!from) return tl::unexpected(from.error());
  auto to = one_interval(db, kAtOrBefore, std::min(range.to_unix_ns.value_or(kLatest), kLatest));
  if (!to) return tl::unexpected(to.error());
  std::vector<SeriesPoint> out;
  if (!*to) return out;
  // From the row in force at `from` (it may be older) to the last at or before `to`, in both tables.
  auto start = *from ? rows_at(db, (*from)->id, {stack}) : std::map<int64_t, SampleRow>();
  if (!start) return tl::unexpected(start.error());
  const int64_t first = start->count(stack) ? start->at(stack).interval : 0;
  auto rows = sample_rows(db, stack, first, (*to)->id);
  if (!rows) return tl::unexpected(rows.error());
  auto recent = db.cached(kRecentSeries);
  if (!recent) return tl::unexpected(recent.error());
  (*recent)->bind(1, stack).bind(2, first).bind(3, (*to)->id);
  for (;;) {
    auto row = (*recent)->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    const Statement& q = **recent;
    SampleRow r;
    r.interval = static_cast<int64_t>(q.u64(1)), r.t = q.u64(2), r.bytes = q.opt_u64(3);
    r.allocs = q.u64(7), r.frees = q.u64(8);
    rows->push_back(r);
  }
  std::stable_sort(rows->begin(), rows->end(),
                   [](const SampleRow& a, const SampleRow& b) { return a.interval < b.interval; });
  for (const auto& r : *rows) {
    const uint64_t b = r.bytes.value_or(0);
    out.push_back(
        SeriesPoint{r.t, r.bytes, r.min_bytes.value_or(b), r.max_bytes.value_or(b), r.allocs, r.frees});
  }
  return out;
}

}  // namespace memsight::store
