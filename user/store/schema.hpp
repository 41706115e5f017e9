// The tables of memsight.db/1 (documented for users in docs/store.md), and the checks that a file is
// one of ours before anything touches it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "sqlite.hpp"
#include "store.hpp"

namespace memsight::store {

enum class FileState { kMissing, kEmpty, kMemsight };

// Whether `path` is absent, empty, or a readable memsight database of a schema this build knows.
// Never writes anything, not even SQLite's -wal/-shm side files, for a file that is not ours.
// Errors: kUsage for a file that is not a memsight database or is of a newer schema; kRuntime for a
// truncated or corrupt one, or one that can't be read.
Result<FileState> inspect_file(const std::string& path);

// Creates the tables and the meta rows in an empty database (inside the caller's transaction).
Result<void> create_schema(Db& db, uint64_t now_unix_ns);

// The `oom_episode` table, created if missing: an addition to memsight.db/1 that older files lack
// (readers treat its absence as no episodes).
Result<void> add_episode_table(Db& db);
// The stored episodes (none in a file without the table), oldest first.
Result<std::vector<EpisodeRow>> read_episodes(Db& db, std::optional<uint64_t> number, std::optional<uint32_t> pid);

// The meta table says memsight.db/1 (or an older version this build reads).
Result<void> check_meta(Db& db);

// PRAGMA quick_check: "ok", or a kRuntime error naming the damage.
Result<void> check_integrity(Db& db);

// Percent-encodes `path` into a file: URI (for SQLITE_OPEN_URI) with the given query.
std::string file_uri(const std::string& path, const std::string& query);

}  // namespace memsight::store
