// A thin RAII layer over the SQLite C API: a connection with a cache of prepared statements, and
// statements whose errors come back as values. Integers are stored as SQLite's signed 64-bit INTEGER;
// uint64_t values are cast both ways, so every value round-trips exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace memsight::store {

class Statement {
 public:
  Statement(sqlite3_stmt* stmt, sqlite3* db, const std::string* path) : stmt_(stmt), db_(db), path_(path) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Clears bindings and results: call before reuse (Db::cached does).
  void reset();
  Statement& bind(int index, uint64_t value);
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, double value);
  Statement& bind(int index, std::string_view text);
  Statement& bind_blob(int index, const std::vector<uint8_t>& blob);
  Statement& bind_null(int index);
  template <typename T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind_null(index);
  }
  Statement& bind(int index, uint32_t value) { return bind(index, static_cast<uint64_t>(value)); }

  // true: a row is ready; false: done.
  Result<bool> step();
  // Steps to the end (for statements that return no rows).
  Result<void> run();

  bool is_null(int col) const;
  uint64_t u64(int col) const;
  double real(int col) const;
  std::string text(int col) const;
  std::vector<uint8_t> blob(int col) const;
  std::optional<uint64_t> opt_u64(int col) const;
  std::optional<double> opt_real(int col) const;
  std::optional<std::string> opt_text(int col) const;

 private:
  sqlite3_stmt* stmt_;
  sqlite3* db_;
  const std::string* path_;  // for error messages
};

// A cached statement lent out: reset when the borrower is done, so no read transaction stays open.
class Borrowed {
 public:
  explicit Borrowed(Statement* stmt) : stmt_(stmt) {}
  Borrowed(Borrowed&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Borrowed& operator=(Borrowed&&) = delete;
  ~Borrowed() {
    if (stmt_) stmt_->reset();
  }
  Statement* operator->() const { return stmt_; }
  Statement& operator*() const { return *stmt_; }

 private:
  Statement* stmt_;
};

class Db {
 public:
  // `target`: what SQLite opens (the path, or a file: URI with SQLITE_OPEN_URI in `flags`); `path`
  // names the file in error messages.
  static Result<std::unique_ptr<Db>> open(const std::string& path, const std::string& target, int flags);
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  Result<void> exec(const std::string& sql);
  Result<std::unique_ptr<Statement>> prepare(const std::string& sql);
  // A statement prepared once per connection (keyed by the address of a static SQL string).
  Result<Borrowed> cached(const char* sql);
  int64_t last_insert_rowid() const;
  int changes() const;
  const std::string& path() const { return path_; }
  sqlite3* handle() const { return db_; }

 private:
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  std::unordered_map<const char*, std::unique_ptr<Statement>> cache_;
};

// The error for a failed SQLite call: the file, what SQLite said, and what to do for the usual causes.
Error sqlite_error(sqlite3* db, int rc, const std::string& path);

// RAII transaction: rolls back unless commit() succeeded.
class Transaction {
 public:
  static Result<Transaction> begin(Db& db, bool immediate);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();
  Result<void> commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_;
};

}  // namespace memsight::store
