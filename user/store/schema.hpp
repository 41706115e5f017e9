// The tables of memsight.db/1 (documented for users in docs/store.md), and the checks that a file is
// one of ours before anything touches it.
#pragma once

#include <string>

#include "core/error.hpp"
#include "sqlite.hpp"

namespace memsight::store {

enum class FileState { kMissing, kEmpty, kMemsight };

// Whether `path` is absent, empty, or a readable memsight database of a schema this build knows.
// Never writes anything, not even SQLite's -wal/-shm side files, for a file that is not ours.
// Errors: kUsage for a file that is not a memsight database or is of a newer schema; kRuntime for a
// truncated or corrupt one, or one that can't be read.
Result<FileState> inspect_file(const std::string& path);

// Creates the tables and the meta rows in an empty database (inside the caller's transaction).
Result<void> create_schema(Db& db, uint64_t now_unix_ns);

// The meta table says memsight.db/1 (or an older version this build reads).
Result<void> check_meta(Db& db);

// PRAGMA quick_check: "ok", or a kRuntime error naming the damage.
Result<void> check_integrity(Db& db);

// Percent-encodes `path` into a file: URI (for SQLITE_OPEN_URI) with the given query.
std::string file_uri(const std::string& path, const std::string& query);

}  // namespace memsight::store
