// Recorder::open and the per-interval write. The rules that keep a day of history small:
// - a stack writes a `sample` row only when something about it changed since its last row (a stable
//   stack costs nothing); counts are deltas since that row;
// - its verdict and epoch histogram (`detail`) are written when the verdict kind changes, else at most
//   every tiers[0].detail_s, and only if the stack changed meanwhile;
// - stacks and frames are stored once and referenced by id.
#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "codec.hpp"
#include "recorder_state.hpp"
#include "rows.hpp"
#include "schema.hpp"

namespace memsight::store {
namespace {

uint64_t wall_clock_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Result<void> check_directory(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    return fail(errno == ENOENT ? ExitCode::kUsage : ExitCode::kRuntime,
                fmt::format("cannot record into {}: directory {}: {}: create it, or give --db a path in an "
                            "existing directory",
                            path, dir, std::strerror(errno)));
  if (!S_ISDIR(st.st_mode))
    return fail(ExitCode::kUsage, fmt::format("cannot record into {}: {} is not a directory", path, dir));
  return {};
}

Result<void> create_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return fail(ExitCode::kRuntime,
                fmt::format("cannot create {}: {}: give --db a path in a writable directory", path,
                            std::strerror(errno)));
  ::close(fd);
  return {};
}

// WAL: readers read while the recorder writes, and a killed recorder loses at most the transaction it
// was in. synchronous=NORMAL: a commit survives a process crash (not a power cut) without an fsync.
Result<void> configure(Db& db) {
  auto mode = db.prepare("PRAGMA journal_mode = WAL");
  if (!mode) return tl::unexpected(mode.error());
  auto row = (*mode)->step();
  if (!row) return tl::unexpected(row.error());
  const std::string got = *row ? (*mode)->text(0) : std::string();
  if (got != "wal")
    return fail(ExitCode::kRuntime,
                fmt::format("{}: SQLite could not switch to WAL mode (it says '{}'): put --db "
                            "on a local file system",
                            db.path(), got));
  return db.exec("PRAGMA synchronous = NORMAL");
}

Result<void> init_schema(Db& db) {
  auto tx = Transaction::begin(db, true);
  if (!tx) return tl::unexpected(tx.error());
  auto count = db.prepare("SELECT count(*) FROM sqlite_schema");
  if (!count) return tl::unexpected(count.error());
  auto row = (*count)->step();
  if (!row) return tl::unexpected(row.error());
  const bool empty = (*count)->u64(0) == 0;
  (*count)->reset();
  auto ok = empty ? create_schema(db, wall_clock_ns()) : check_meta(db);
  if (!ok) return ok;
  if (auto added = add_episode_table(db); !added) return added;  // files from before OOM episodes
  auto mark = db.prepare("INSERT OR REPLACE INTO recorder (id, pid, started_unix_ns) VALUES (1, ?1, ?2)");
  if (!mark) return tl::unexpected(mark.error());
  if (auto ok2 = (*mark)->bind(1, static_cast<uint64_t>(::getpid())).bind(2, wall_clock_ns()).run(); !ok2)
    return ok2;
  return tx->commit();
}

// Opens (creating if `create`) and prepares the database under the lock already held.
Result<std::unique_ptr<Db>> open_locked(const std::string& path, bool create) {
  if (create)
    if (auto ok = create_file(path); !ok) return tl::unexpected(ok.error());
  auto db = Db::open(path, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW);
  if (!db) return db;
  if (auto ok = configure(**db); !ok) return tl::unexpected(ok.error());
  if (auto ok = init_schema(**db); !ok) return tl::unexpected(ok.error());
  return db;
}

// Each stack's last written state, from where a new session's change detection starts (its counters
// start at 0: a new tracker's are cumulative from its own start).
Result<void> load_stacks(Db& db, RecorderCaches& caches) {
  auto s = db.prepare(
      "SELECT id, pid, stack_id, EXISTS (SELECT 1 FROM stack_frame WHERE stack = stack.id) FROM stack ORDER "
      "BY id");
  if (!s) return tl::unexpected(s.error());
  std::vector<std::pair<std::pair<uint32_t, uint64_t>, StackMemo>> memos;
  for (;;) {
    auto row = (*s)->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    StackMemo m;
    m.id = static_cast<int64_t>((*s)->u64(0));
    m.has_symbols = (*s)->u64(3) != 0;
    memos.push_back({{static_cast<uint32_t>((*s)->u64(1)), (*s)->u64(2)}, m});
  }
  std::vector<int64_t> ids;
  for (const auto& [key, m] : memos) ids.push_back(m.id);
  const int64_t last = INT64_MAX;
  auto rows = rows_at(db, last, ids);
  if (!rows) return tl::unexpected(rows.error());
  auto details = details_at(db, last, ids);
  if (!details) return tl::unexpected(details.error());
  for (auto& [key, m] : memos) {
    if (auto r = rows->find(m.id); r != rows->end() && r->second.bytes)
      m.present = true, m.bytes = *r->second.bytes, m.count = r->second.count.value_or(0);
    if (auto d = details->find(m.id); d != details->end())
      m.has_detail = true, m.detail_kind = verdict_kind(d->second.verdict);  // detail_unix_ns 0: due at once
    caches.stacks[key] = m;
  }
  return {};
}

}  // namespace

Result<void> load_shared(Db& db, RecorderCaches& caches) {
  caches.frames.clear();
  caches.cgroups.clear();
  auto frames = db.prepare("SELECT id, address, function, module, file, line, inlined FROM frame");
  if (!frames) return tl::unexpected(frames.error());
  for (;;) {
    auto row = (*frames)->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    const Statement& f = **frames;
    core::Frame frame{f.u64(1), f.opt_text(2), f.opt_text(3), f.opt_text(4), std::nullopt, f.u64(6) != 0};
    if (!f.is_null(5)) frame.line = static_cast<uint32_t>(f.u64(5));
    caches.frames[frame_key(frame)] = static_cast<int64_t>(f.u64(0));
  }
  auto cgroups = db.prepare("SELECT id, path FROM cgroup");
  if (!cgroups) return tl::unexpected(cgroups.error());
  for (;;) {
    auto row = (*cgroups)->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    caches.cgroups[(*cgroups)->text(1)] = static_cast<int64_t>((*cgroups)->u64(0));
  }
  return {};
}

Result<void> load_caches(Db& db, RecorderCaches& caches) {
  caches = RecorderCaches{};
  auto last = db.prepare("SELECT max(t_unix_ns) FROM interval");
  if (!last) return tl::unexpected(last.error());
  auto row = (*last)->step();
  if (!row) return tl::unexpected(row.error());
  caches.last_unix_ns = (*last)->u64(0);  // NULL (no interval yet) reads as 0
  if (auto ok = load_shared(db, caches); !ok) return ok;
  return load_stacks(db, caches);
}

Recorder::Recorder(std::unique_ptr<State> state) : state_(std::move(state)) {}

Recorder::~Recorder() {
  if (!state_ || !state_->db) return;
  (void)state_->db->exec("DELETE FROM recorder");
  state_->db.reset();  // the last connection checkpoints the WAL into the file and removes it
}

Result<std::unique_ptr<Recorder>> Recorder::open(const std::string& path, const Retention& retention) {
  if (auto ok = retention.validate(); !ok) return tl::unexpected(ok.error());
  if (auto ok = check_directory(path); !ok) return tl::unexpected(ok.error());
  auto before = inspect_file(path);  // refuses what is not ours before creating anything next to it
  if (!before) return tl::unexpected(before.error());
  auto lock = FileLock::acquire(path);
  if (!lock) return tl::unexpected(lock.error());
  // Under the lock, look again: another recorder may have created the file in between.
  auto now = *before == FileState::kMemsight ? before : inspect_file(path);
  if (!now) return tl::unexpected(now.error());
  const bool create = *now == FileState::kMissing;
  auto state = std::make_unique<State>(path, retention, std::move(*lock));
  auto db = open_locked(path, create);
  if (!db) {
    if (create)  // ours, and empty or half made: leave nothing behind
      for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((path + suffix).c_str());
    return tl::unexpected(db.error());
  }
  state->db = std::move(*db);
  if (auto ok = load_caches(*state->db, state->caches); !ok) return tl::unexpected(ok.error());
  return std::unique_ptr<Recorder>(new Recorder(std::move(state)));
}

}  // namespace memsight::store
