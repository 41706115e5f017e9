// Reader: snapshots and series back out of the history, each in one read transaction (a consistent
// view while a recorder keeps writing: WAL).
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>

#include "codec.hpp"
#include "reader_queries.hpp"
#include "schema.hpp"

namespace memsight::store {
namespace {

// Read-write (never create) so that a WAL left by a killed recorder can be recovered, with
// query_only so this connection never changes data; a file we may not write is opened immutable.
Result<std::unique_ptr<Db>> open_for_reading(const std::string& path) {
  auto db = Db::open(path, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW);
  Result<void> ok = db ? (*db)->exec("PRAGMA query_only = 1") : tl::unexpected(db.error());
  if (ok) ok = check_meta(**db);
  if (ok) return db;
  struct stat wal {};
  if (::stat((path + "-wal").c_str(), &wal) == 0) return tl::unexpected(ok.error());
  return Db::open(path, file_uri(path, "mode=ro&immutable=1"), SQLITE_OPEN_READONLY | SQLITE_OPEN_URI);
}

}  // namespace

struct Reader::State {
  std::string path;
  std::unique_ptr<Db> db;
};

Reader::Reader(std::unique_ptr<State> state) : state_(std::move(state)) {}
Reader::~Reader() = default;

Result<std::unique_ptr<Reader>> Reader::open(const std::string& path) {
  auto kind = inspect_file(path);
  if (!kind) return tl::unexpected(kind.error());
  if (*kind == FileState::kMissing)
    return fail(ExitCode::kUsage,
                fmt::format("{}: no such file: give --db the file memsight record wrote", path));
  if (*kind == FileState::kEmpty)
    return fail(ExitCode::kUsage,
                fmt::format("{} is empty, not a memsight database: give --db the file memsight "
                            "record wrote",
                            path));
  auto db = open_for_reading(path);
  if (!db) return tl::unexpected(db.error());
  if (auto ok = check_meta(**db); !ok) return tl::unexpected(ok.error());
  auto state = std::make_unique<State>();
  state->path = path;
  state->db = std::move(*db);
  return std::unique_ptr<Reader>(new Reader(std::move(state)));
}

Result<core::Snapshot> Reader::snapshot(const TimeRange& range, std::optional<uint32_t> pid) {
  Db& db = *state_->db;
  auto tx = Transaction::begin(db, false);
  if (!tx) return tl::unexpected(tx.error());
  auto window = resolve_window(db, range);
  if (!window) return tl::unexpected(window.error());
  core::Snapshot snap;
  if (auto ok = read_interval(db, window->to, snap); !ok) return tl::unexpected(ok.error());
  auto processes = read_processes(db, window->to.id, pid);
  if (!processes) return tl::unexpected(processes.error());
  snap.processes = std::move(*processes);
  auto stacks = read_stacks(db, *window, pid);
  if (!stacks) return tl::unexpected(stacks.error());
  snap.stacks = std::move(*stacks);
  std::sort(snap.stacks.begin(), snap.stacks.end(), [](const core::StackRow& a, const core::StackRow& b) {
    if (a.outstanding_bytes != b.outstanding_bytes) return a.outstanding_bytes > b.outstanding_bytes;
    if (a.allocated_bytes != b.allocated_bytes) return a.allocated_bytes > b.allocated_bytes;
    return std::pair(a.pid, a.stack_id) < std::pair(b.pid, b.stack_id);
  });
  if (auto ok = tx->commit(); !ok) return tl::unexpected(ok.error());
  return snap;
}

Result<std::vector<EpisodeRow>> Reader::episodes(std::optional<uint64_t> number, std::optional<uint32_t> pid) {
  return read_episodes(*state_->db, number, pid);
}

Result<std::vector<uint32_t>> Reader::pids() {
  auto s = state_->db->cached("SELECT pid FROM process_sample UNION SELECT pid FROM stack ORDER BY 1");
  if (!s) return tl::unexpected(s.error());
  std::vector<uint32_t> out;
  for (;;) {
    auto row = (*s)->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return out;
    out.push_back(static_cast<uint32_t>((*s)->u64(0)));
  }
}

Result<Span> Reader::span() {
  auto s = state_->db->cached("SELECT min(t_unix_ns), max(t_unix_ns), count(*) FROM interval");
  if (!s) return tl::unexpected(s.error());
  auto row = (*s)->step();
  if (!row) return tl::unexpected(row.error());
  return Span{(*s)->u64(0), (*s)->u64(1), (*s)->u64(2)};
}

Result<std::vector<SeriesPoint>> Reader::series(uint32_t pid, uint64_t stack_id, const TimeRange& range) {
  Db& db = *state_->db;
  auto tx = Transaction::begin(db, false);
  if (!tx) return tl::unexpected(tx.error());
  auto points = read_series(db, pid, stack_id, range);
  if (!points) return points;
  if (auto ok = tx->commit(); !ok) return tl::unexpected(ok.error());
  return points;
}

}  // namespace memsight::store
