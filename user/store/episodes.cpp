// OOM episodes: one row per kill or failed allocation, written by `record` as it explains each, read
// by `explain`. Kept outside the tiers: retention never drops them.
#include <fmt/format.h>

#include "recorder_state.hpp"
#include "schema.hpp"

namespace memsight::store {

Result<void> add_episode_table(Db& db) {
  return db.exec(
      "CREATE TABLE IF NOT EXISTS oom_episode ("
      " id INTEGER PRIMARY KEY,"  // the episode number
      " t_unix_ns INTEGER NOT NULL,"
      " kind TEXT NOT NULL,"
      " pid INTEGER NOT NULL,"
      " verdict TEXT NOT NULL,"
      " json TEXT NOT NULL,"
      " text TEXT NOT NULL)");
}

Result<uint64_t> Recorder::next_episode() {
  auto s = state_->db->cached("SELECT coalesce(max(id), 0) + 1 FROM oom_episode");
  if (!s) return tl::unexpected(s.error());
  auto row = (*s)->step();
  if (!row) return tl::unexpected(row.error());
  const uint64_t next = (*s)->u64(0);
  (*s)->reset();
  return next;
}

Result<void> Recorder::write_episode(const EpisodeRow& e) {
  auto s = state_->db->cached(
      "INSERT OR REPLACE INTO oom_episode (id, t_unix_ns, kind, pid, verdict, json, text) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!s) return tl::unexpected(s.error());
  return (*s)->bind(1, e.number).bind(2, e.time_unix_ns).bind(3, e.kind).bind(4, e.pid).bind(5, e.verdict)
      .bind(6, e.json).bind(7, e.text).run();
}

Result<std::vector<EpisodeRow>> read_episodes(Db& db, std::optional<uint64_t> number, std::optional<uint32_t> pid) {
  std::vector<EpisodeRow> out;
  auto has = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'oom_episode'");
  if (!has) return tl::unexpected(has.error());
  auto found = (*has)->step();
  if (!found) return tl::unexpected(found.error());
  if (!*found) return out;  // written before episodes were stored
  auto s = db.prepare(
      "SELECT id, t_unix_ns, kind, pid, verdict, json, text FROM oom_episode "
      "WHERE (?1 IS NULL OR id = ?1) AND (?2 IS NULL OR pid = ?2) ORDER BY id");
  if (!s) return tl::unexpected(s.error());
  (*s)->bind(1, number).bind(2, pid ? std::optional<uint64_t>(*pid) : std::nullopt);
  for (;;) {
    auto row = (*s)->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return out;
    out.push_back({(*s)->u64(0), (*s)->u64(1), (*s)->text(2), static_cast<uint32_t>((*s)->u64(3)), (*s)->text(4),
                   (*s)->text(5), (*s)->text(6)});
  }
}

}  // namespace memsight::store
