#include "sqlite.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

namespace memsight::store {

Error sqlite_error(sqlite3* db, int rc, const std::string& path) {
  const std::string said = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return {ExitCode::kRuntime, fmt::format("{}: the database is damaged ({}): restore it from a copy, "
                                              "or record into a new file",
                                              path, said)};
    case SQLITE_FULL: return {ExitCode::kRuntime, fmt::format("{}: {}: free some disk space", path, said)};
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
      return {
          ExitCode::kRuntime,
          fmt::format("{}: {}: check that the file and its directory are writable by this user", path, said)};
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return {ExitCode::kRuntime,
              fmt::format("{}: {}: another process holds the database locked; retry", path, said)};
    default: return {ExitCode::kRuntime, fmt::format("{}: SQLite error: {}", path, said)};
  }
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Statement& Statement::bind(int index, uint64_t value) {
  sqlite3_bind_int64(stmt_, index, static_cast<sqlite3_int64>(value));
  return *this;
}

Statement& Statement::bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Statement& Statement::bind(int index, double value) {
  sqlite3_bind_double(stmt_, index, value);
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind_blob(int index, const std::vector<uint8_t>& blob) {
  sqlite3_bind_blob(stmt_, index, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  return *this;
}

Statement& Statement::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error error = sqlite_error(db_, rc, *path_);
  sqlite3_reset(stmt_);
  return tl::unexpected(std::move(error));
}

Result<void> Statement::run() {
  for (;;) {
    auto more = step();
    if (!more) return tl::unexpected(more.error());
    if (!*more) break;
  }
  sqlite3_reset(stmt_);
  return {};
}

bool Statement::is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

uint64_t Statement::u64(int col) const {
  return static_cast<uint64_t>(sqlite3_column_int64(stmt_, col));
}

double Statement::real(int col) const {
  return sqlite3_column_double(stmt_, col);
}

std::string Statement::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

std::vector<uint8_t> Statement::blob(int col) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, col));
  const int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::vector<uint8_t>(p, p + n) : std::vector<uint8_t>();
}

std::optional<uint64_t> Statement::opt_u64(int col) const {
  if (is_null(col)) return std::nullopt;
  return u64(col);
}

std::optional<double> Statement::opt_real(int col) const {
  if (is_null(col)) return std::nullopt;
  return real(col);
}

std::optional<std::string> Statement::opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}

Result<std::unique_ptr<Db>> Db::open(const std::string& path, const std::string& target, int flags) {
  sqlite3* handle = nullptr;
  const int rc = sqlite3_open_v2(target.c_str(), &handle, flags, nullptr);
  if (rc != SQLITE_OK) {
    Error error = sqlite_error(handle, rc, path);
    sqlite3_close_v2(handle);
    return tl::unexpected(std::move(error));
  }
  sqlite3_extended_result_codes(handle, 1);
  sqlite3_busy_timeout(handle, 5000);  // ms: WAL readers and the writer wait briefly, never fail at once
  return std::unique_ptr<Db>(new Db(handle, path));
}

Db::~Db() {
  cache_.clear();  // statements first: sqlite3_close refuses a connection with live statements
  sqlite3_close_v2(db_);
}

Result<void> Db::exec(const std::string& sql) {
  char* message = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
  sqlite3_free(message);
  if (rc != SQLITE_OK) return tl::unexpected(sqlite_error(db_, rc, path_));
  return {};
}

Result<std::unique_ptr<Statement>> Db::prepare(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                    &stmt, nullptr);
  if (rc != SQLITE_OK) return tl::unexpected(sqlite_error(db_, rc, path_));
  return std::make_unique<Statement>(stmt, db_, &path_);
}

Result<Borrowed> Db::cached(const char* sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    auto stmt = prepare(sql);
    if (!stmt) return tl::unexpected(stmt.error());
    it = cache_.emplace(sql, std::move(*stmt)).first;
  }
  it->second->reset();
  return Borrowed(it->second.get());
}

int64_t Db::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}

int Db::changes() const {
  return sqlite3_changes(db_);
}

Result<Transaction> Transaction::begin(Db& db, bool immediate) {
  auto ok = db.exec(immediate ? "BEGIN IMMEDIATE" : "BEGIN");
  if (!ok) return tl::unexpected(ok.error());
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_) (void)db_->exec("ROLLBACK");
}

Result<void> Transaction::commit() {
  auto ok = db_->exec("COMMIT");
  if (!ok) return ok;  // the destructor rolls back
  db_ = nullptr;
  return {};
}

}  // namespace memsight::store
