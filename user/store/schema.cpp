#include "schema.hpp"

#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "store.hpp"

#ifndef MEMSIGHT_VERSION
#define MEMSIGHT_VERSION "unknown"
#endif

namespace memsight::store {
namespace {

// Integers are SQLite varints on disk: small values cost one or two bytes, so every column is an
// integer in its natural unit. Tables keyed by (stack, interval) or (interval, ...) are WITHOUT ROWID:
// the key is stored once, in the table's own B-tree.
//
// Two layouts for the per-stack rows, because one can't serve both the writer and the readers:
//   sample_recent, detail_recent  keyed (interval, stack): each interval appends a few pages at the
//                                 end of the B-tree (keyed by stack, 500 changing stacks would dirty
//                                 500 pages, 2 MB of WAL, every second);
//   sample, detail                keyed (stack, interval): a stack's history is one seek away. Rows move
//                                 here when they leave tier 0, merged, a minute's worth at a time.
// The views `samples` and `details` show both.
constexpr const char* kSchemaSql = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE recorder (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pid INTEGER NOT NULL,
  started_unix_ns INTEGER NOT NULL);
CREATE TABLE interval (
  id INTEGER PRIMARY KEY,
  t_unix_ns INTEGER NOT NULL UNIQUE,
  mono_ns INTEGER NOT NULL,
  interval_s REAL NOT NULL,
  mode TEXT NOT NULL,
  tier INTEGER NOT NULL,
  lost_events INTEGER NOT NULL,
  lost_unmatched_frees INTEGER NOT NULL,
  lost_truncated_stacks INTEGER NOT NULL);
CREATE TABLE cgroup (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE);
CREATE TABLE process_sample (
  interval INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  comm TEXT,
  exited INTEGER NOT NULL,
  heap_bytes INTEGER NOT NULL,
  heap_allocs INTEGER NOT NULL,
  heap_min_bytes INTEGER,
  heap_max_bytes INTEGER,
  unmatched_frees INTEGER NOT NULL,
  rss_anon_bytes INTEGER,
  rss_anon_max_bytes INTEGER,
  cgroup INTEGER,
  cg_usage_bytes INTEGER,
  cg_usage_max_bytes INTEGER,
  cg_limit_bytes INTEGER,
  cg_anon_bytes INTEGER,
  cg_file_bytes INTEGER,
  cg_shmem_bytes INTEGER,
  cg_kernel_bytes INTEGER,
  cg_sock_bytes INTEGER,
  PRIMARY KEY (interval, pid)) WITHOUT ROWID;
CREATE INDEX process_sample_by_cgroup ON process_sample (cgroup);
CREATE TABLE frame (
  id INTEGER PRIMARY KEY,
  address INTEGER NOT NULL,
  function TEXT,
  module TEXT,
  file TEXT,
  line INTEGER,
  inlined INTEGER NOT NULL);
CREATE TABLE stack (
  id INTEGER PRIMARY KEY,
  pid INTEGER NOT NULL,
  stack_id INTEGER NOT NULL,
  truncated INTEGER NOT NULL,
  addresses TEXT NOT NULL,
  UNIQUE (pid, stack_id));
CREATE TABLE stack_frame (
  stack INTEGER NOT NULL,
  pos INTEGER NOT NULL,
  frame INTEGER NOT NULL,
  PRIMARY KEY (stack, pos)) WITHOUT ROWID;
CREATE INDEX stack_frame_by_frame ON stack_frame (frame);
CREATE TABLE sample (
  stack INTEGER NOT NULL,
  interval INTEGER NOT NULL,
  outstanding_bytes INTEGER,
  outstanding_allocs INTEGER,
  min_bytes INTEGER,
  max_bytes INTEGER,
  allocs INTEGER NOT NULL,
  frees INTEGER NOT NULL,
  allocated_bytes INTEGER NOT NULL,
  oldest_age_ms INTEGER,
  PRIMARY KEY (stack, interval)) WITHOUT ROWID;
CREATE TABLE sample_recent (
  interval INTEGER NOT NULL,
  stack INTEGER NOT NULL,
  outstanding_bytes INTEGER,
  outstanding_allocs INTEGER,
  allocs INTEGER NOT NULL,
  frees INTEGER NOT NULL,
  allocated_bytes INTEGER NOT NULL,
  oldest_age_ms INTEGER,
  PRIMARY KEY (interval, stack)) WITHOUT ROWID;
CREATE TABLE detail (
  stack INTEGER NOT NULL,
  interval INTEGER NOT NULL,
  verdict TEXT NOT NULL,
  floor_slope_bytes_per_s REAL NOT NULL,
  survival REAL,
  epochs_alive REAL NOT NULL,
  verdict_samples INTEGER NOT NULL,
  why TEXT NOT NULL,
  epoch_ns INTEGER NOT NULL,
  epochs BLOB NOT NULL,
  PRIMARY KEY (stack, interval)) WITHOUT ROWID;
CREATE TABLE detail_recent (
  interval INTEGER NOT NULL,
  stack INTEGER NOT NULL,
  verdict TEXT NOT NULL,
  floor_slope_bytes_per_s REAL NOT NULL,
  survival REAL,
  epochs_alive REAL NOT NULL,
  verdict_samples INTEGER NOT NULL,
  why TEXT NOT NULL,
  epoch_ns INTEGER NOT NULL,
  epochs BLOB NOT NULL,
  PRIMARY KEY (interval, stack)) WITHOUT ROWID;
CREATE VIEW samples AS
  SELECT stack, interval, outstanding_bytes, outstanding_allocs, min_bytes, max_bytes, allocs, frees,
         allocated_bytes, oldest_age_ms FROM sample
  UNION ALL
  SELECT stack, interval, outstanding_bytes, outstanding_allocs, NULL, NULL, allocs, frees, allocated_bytes,
         oldest_age_ms FROM sample_recent;
CREATE VIEW details AS
  SELECT stack, interval, verdict, floor_slope_bytes_per_s, survival, epochs_alive, verdict_samples, why, epoch_ns,
         epochs FROM detail
  UNION ALL
  SELECT stack, interval, verdict, floor_slope_bytes_per_s, survival, epochs_alive, verdict_samples, why, epoch_ns,
         epochs FROM detail_recent;
)sql";

// "MSDB": lets file(1)-like tools tell the format without reading tables.
constexpr int kApplicationId = 0x4D534442;

constexpr char kSqliteMagic[16] = "SQLite format 3";  // with its NUL: the 16-byte file header

Error not_ours(const std::string& path, const std::string& why) {
  return {
      ExitCode::kUsage,
      fmt::format("{} is not a memsight database ({}): give --db a new file or one memsight record wrote; "
                  "it was left untouched",
                  path, why)};
}

Error corrupt(const std::string& path, const std::string& why) {
  return {ExitCode::kRuntime,
          fmt::format("{} is a damaged memsight database ({}): restore it from a copy, or record into a new "
                      "file; it was left untouched",
                      path, why)};
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// The 100-byte SQLite header: magic, page size, and (when no WAL holds newer pages) the file's size.
Result<void> check_header(const std::string& path, uint64_t size, bool has_wal) {
  unsigned char header[100] = {};
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ExitCode::kRuntime, fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  in.read(reinterpret_cast<char*>(header), sizeof header);
  if (in.gcount() < static_cast<std::streamsize>(sizeof header) || std::memcmp(header, kSqliteMagic, 16) != 0)
    return tl::unexpected(not_ours(path, "not an SQLite file"));
  uint32_t page = (uint32_t{header[16]} << 8) | header[17];
  if (page == 1) page = 65536;
  if (page < 512 || (page & (page - 1)) != 0)
    return tl::unexpected(corrupt(path, "bad page size in the header"));
  if (has_wal) return {};
  const uint32_t pages = be32(header + 28);
  const bool pages_valid = be32(header + 92) == be32(header + 24);  // "version-valid-for" = change counter
  if (size % page != 0 || (pages_valid && size < uint64_t{pages} * page))
    return tl::unexpected(
        corrupt(path, fmt::format("truncated: {} bytes, the header says {} pages of {}", size, pages, page)));
  return {};
}

Result<std::string> meta_value(Db& db, const char* key) {
  auto stmt = db.prepare(fmt::format("SELECT value FROM meta WHERE key = '{}'", key));
  if (!stmt) return tl::unexpected(stmt.error());
  auto row = (*stmt)->step();
  if (!row) return tl::unexpected(row.error());
  return *row ? (*stmt)->text(0) : std::string();
}

}  // namespace

std::string file_uri(const std::string& path, const std::string& query) {
  std::string uri = "file:";
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~')
      uri += static_cast<char>(c);
    else
      uri += fmt::format("%{:02X}", c);
  }
  return uri + "?" + query;
}

Result<void> check_meta(Db& db) {
  auto has_meta = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'");
  if (!has_meta) return tl::unexpected(has_meta.error());
  auto found = (*has_meta)->step();
  if (!found) return tl::unexpected(found.error());
  if (!*found) return tl::unexpected(not_ours(db.path(), "an SQLite database without memsight's meta table"));
  auto schema = meta_value(db, "schema");
  if (!schema) return tl::unexpected(schema.error());
  auto version = meta_value(db, "version");
  if (!version) return tl::unexpected(version.error());
  const std::string prefix = "memsight.db/";
  if (schema->rfind(prefix, 0) != 0)
    return tl::unexpected(not_ours(db.path(), fmt::format("its meta table says schema '{}'", *schema)));
  const int from_name = std::atoi(schema->c_str() + prefix.size());
  const int from_version = std::atoi(version->c_str());
  if (from_name > kSchemaVersion || from_version > kSchemaVersion)
    return fail(
        ExitCode::kUsage,
        fmt::format("{} was written by a newer memsight (schema {}, version {}); this memsight reads {} "
                    "and older: upgrade memsight to read it",
                    db.path(), *schema, *version, kSchemaName));
  if (from_name < 1 || from_version < 1)
    return tl::unexpected(
        not_ours(db.path(), fmt::format("unknown schema '{}' version '{}'", *schema, *version)));
  return {};
}

Result<void> check_integrity(Db& db) {
  auto stmt = db.prepare("PRAGMA quick_check(5)");
  if (!stmt) return tl::unexpected(stmt.error());
  std::string problems;
  for (;;) {
    auto row = (*stmt)->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) break;
    const std::string line = (*stmt)->text(0);
    if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
  }
  if (!problems.empty()) return tl::unexpected(corrupt(db.path(), problems));
  return {};
}

Result<FileState> inspect_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return FileState::kMissing;
    return fail(ExitCode::kRuntime, fmt::format("{}: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) return tl::unexpected(not_ours(path, "not a regular file"));
  if (st.st_size == 0) return FileState::kEmpty;
  struct stat wal {};
  const bool has_wal = ::stat((path + "-wal").c_str(), &wal) == 0 && wal.st_size > 0;
  if (auto ok = check_header(path, static_cast<uint64_t>(st.st_size), has_wal); !ok)
    return tl::unexpected(ok.error());
  // Without a WAL, open the file as immutable: no locks, no side files. With one (a live or crashed
  // recorder), a plain read-only connection reads the committed pages the WAL holds.
  const int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI;
  auto db = Db::open(path, file_uri(path, has_wal ? "mode=ro" : "mode=ro&immutable=1"), flags);
  if (!db) return tl::unexpected(db.error());
  if (auto ok = check_meta(**db); !ok) return tl::unexpected(ok.error());
  if (auto ok = check_integrity(**db); !ok) return tl::unexpected(ok.error());
  return FileState::kMemsight;
}

Result<void> create_schema(Db& db, uint64_t now_unix_ns) {
  if (auto ok = db.exec(kSchemaSql); !ok) return ok;
  if (auto ok = db.exec(fmt::format("PRAGMA application_id = {}; PRAGMA user_version = {}", kApplicationId,
                                    kSchemaVersion));
      !ok)
    return ok;
  auto insert = db.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)");
  if (!insert) return tl::unexpected(insert.error());
  const std::pair<const char*, std::string> rows[] = {
      {"schema", kSchemaName},
      {"version", std::to_string(kSchemaVersion)},
      {"writer", std::string("memsight ") + MEMSIGHT_VERSION},
      {"created_unix_ns", std::to_string(now_unix_ns)},
  };
  for (const auto& [key, value] : rows) {
    (*insert)->reset();
    if (auto ok = (*insert)->bind(1, std::string_view(key)).bind(2, std::string_view(value)).run(); !ok)
      return ok;
  }
  return {};
}

}  // namespace memsight::store
