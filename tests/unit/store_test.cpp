// The SQLite history: round trips, change-only writes, downsampling (floor and peak), retention, the
// recorder's lock, reading while recording, SIGKILL safety, and files that are not ours left untouched.
#include "store/store.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <tuple>

using namespace memsight;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kS = 1'000'000'000;
constexpr uint64_t kT0 = 1'700'000'040ull * kS;  // on a whole minute (and 10 s, 10 min: 1700000400 % 600 = 0)

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "store_test.XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    for (auto& entry : fs::recursive_directory_iterator(path, ec))
      fs::permissions(entry.path(), fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> names;
  for (auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

// Raw SQL for checks the API has no reason to offer (row counts, kept intervals). Read-write, so that the
// last connection to close removes the -wal and -shm files, as the store's own connections do.
std::vector<uint64_t> query_column(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
  std::vector<uint64_t> out;
  while (sqlite3_step(stmt) == SQLITE_ROW)
    out.push_back(static_cast<uint64_t>(sqlite3_column_int64(stmt, 0)));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

uint64_t query_u64(const std::string& path, const std::string& sql) {
  return query_column(path, sql).at(0);
}

void exec_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}

core::Frame frame(uint64_t address, const char* function, const char* module, std::optional<std::string> file,
                  std::optional<uint32_t> line, bool inlined = false) {
  return core::Frame{address, function, module, std::move(file), line, inlined};
}

core::StackRow stack_row(uint32_t pid, uint64_t id, uint64_t bytes, uint64_t allocs, uint64_t frees) {
  core::StackRow row;
  row.pid = pid;
  row.stack_id = id;
  row.outstanding_bytes = bytes;
  row.outstanding_allocs = allocs - frees;
  row.allocs = allocs;
  row.frees = frees;
  row.allocated_bytes = allocs * 64;
  row.oldest_age_s = bytes ? std::optional<double>(1.25) : std::nullopt;
  row.frames = {0x7f0000001000 + id, 0x401000 + id};
  row.epoch_ns = kS;
  row.epochs = {{100, 90, 3}, {200, 0, 5}, {300000, 299999, 70000}};
  row.verdict.why = "too few samples yet";
  return row;
}

store::Retention small_tiers(uint64_t total_s) {
  store::Retention r;
  r.tiers = {{1, 60, 10}, {10, 300, 60}, {60, 3600, 600}};
  r.total_s = total_s;
  return r;
}

std::unique_ptr<store::Recorder> open_recorder(const std::string& path, const store::Retention& r = {}) {
  auto rec = store::Recorder::open(path, r);
  INFO((rec ? std::string() : rec.error().message));
  REQUIRE(rec);
  return std::move(*rec);
}

std::unique_ptr<store::Reader> open_reader(const std::string& path) {
  auto reader = store::Reader::open(path);
  INFO((reader ? std::string() : reader.error().message));
  REQUIRE(reader);
  return std::move(*reader);
}

// ---- round trip --------------------------------------------------------------------------------------

// Interval k of the round trip: two processes, four stacks (A grows, B is stable, C churns, D goes and
// comes back); k = 4 repeats k = 3 ten seconds later.
core::Snapshot round_trip_snapshot(int k) {
  const int j = std::min(k, 3);
  core::Snapshot snap;
  snap.time_unix_ns = kT0 + (k == 4 ? 13 : k) * kS;
  snap.time_ns = 5000 * kS + snap.time_unix_ns - kT0;
  snap.lost = {uint64_t(j), uint64_t(2 * j), 1};
  core::ProcessRow server;
  server.pid = 100;
  server.outstanding_bytes = 3000 + 100 * j;
  server.outstanding_allocs = 10 + j;
  server.unmatched_frees = 7;
  server.comm = "server";
  server.rss_anon_bytes = 1'000'000 + j;
  core::CgroupMemory app;
  app.path = "/app.slice/app";
  app.usage_bytes = 5'000'000 + j, app.limit_bytes = 8'000'000, app.anon_bytes = 4'000'000;
  app.file_bytes = 1'000'000, app.shmem_bytes = 0, app.kernel_bytes = 12345;  // sock: unknown
  server.cgroup = app;
  core::ProcessRow batch;
  batch.pid = 200;
  batch.outstanding_bytes = 64;
  batch.outstanding_allocs = 1;
  batch.exited = j >= 2;
  batch.cgroup = core::CgroupMemory{};
  batch.cgroup->path = "/batch";
  batch.cgroup->usage_bytes = 7;
  if (j == 3) batch.cgroup.reset();  // unknown cgroup
  snap.processes = {server, batch};

  auto a = stack_row(100, 0xa1, 1000 + 500 * j, 20 + 7 * j, 10 + 2 * j);
  a.symbols = {frame(0x7f0000001000, "malloc", "/lib/libc.so.6", "malloc.c", 3287),
               frame(0x4010a1, "helper", "/bin/app", "util.hpp", 12, true),
               frame(0x4010a1, "handle", "/bin/app", "main.cpp", 40),
               frame(0x400000, "_start", "/bin/app", std::nullopt, std::nullopt)};
  a.epochs.push_back({uint64_t(1000 * j), uint64_t(900 * j), uint64_t(j)});
  if (j >= 2) {
    a.verdict = {core::VerdictKind::kLeak, 512.5, 0.97, 0.875, size_t(30 + j), "grows without plateau"};
  }
  auto b = stack_row(100, 0xb2, 4096, 1, 0);
  b.verdict = {core::VerdictKind::kBounded, 0, std::nullopt, 1, 40, "grew, then plateaued"};
  auto c = stack_row(200, 0xc3, 0, 100 * (j + 1), 100 * (j + 1));
  c.truncated = true;
  c.symbols = {frame(0x7f0000001000, "malloc", "/lib/libc.so.6", "malloc.c", 3287),
               frame(0x402000, "churn", "/bin/batch", "batch.c", 9)};
  c.verdict = {core::VerdictKind::kTransient, -1.5, 0.0, 0, 35, "freed soon after birth"};
  snap.stacks = {a, b, c};
  if (j != 2) snap.stacks.push_back(stack_row(200, 0xd4, 256u * (j + 1), 2 + 3 * j, 1));
  for (auto& row : snap.stacks)  // the oldest block of each was born 1.25 s before the first interval
    if (row.oldest_age_s) row.oldest_age_s = 1.25 + double(snap.time_unix_ns - kT0) / 1e9;
  return snap;
}

const core::StackRow* find_stack(const std::vector<core::StackRow>& rows, uint32_t pid, uint64_t id) {
  for (const auto& r : rows)
    if (r.pid == pid && r.stack_id == id) return &r;
  return nullptr;
}

void require_same_process(const core::ProcessRow& got, const core::ProcessRow& want) {
  CHECK(std::tie(got.pid, got.outstanding_bytes, got.outstanding_allocs, got.unmatched_frees, got.exited,
                 got.comm, got.rss_anon_bytes) == std::tie(want.pid, want.outstanding_bytes,
                                                           want.outstanding_allocs, want.unmatched_frees,
                                                           want.exited, want.comm, want.rss_anon_bytes));
  REQUIRE(got.cgroup.has_value() == want.cgroup.has_value());
  if (!want.cgroup) return;
  const auto fields = [](const core::CgroupMemory& c) {
    return std::tie(c.path, c.usage_bytes, c.limit_bytes, c.anon_bytes, c.file_bytes, c.shmem_bytes,
                    c.kernel_bytes, c.sock_bytes);
  };
  CHECK(fields(*got.cgroup) == fields(*want.cgroup));
}

void require_same_stack_fields(const core::StackRow& got, const core::StackRow& want) {
  CHECK(
      std::tie(got.outstanding_bytes, got.outstanding_allocs, got.frames, got.truncated, got.epoch_ns) ==
      std::tie(want.outstanding_bytes, want.outstanding_allocs, want.frames, want.truncated, want.epoch_ns));
  const auto frame_fields = [](const core::Frame& f) {
    return std::tie(f.address, f.function, f.module, f.file, f.line, f.inlined);
  };
  REQUIRE(got.symbols.size() == want.symbols.size());
  for (size_t i = 0; i < got.symbols.size(); ++i)
    CHECK(frame_fields(got.symbols[i]) == frame_fields(want.symbols[i]));
  const auto verdict_fields = [](const core::Verdict& v) {
    return std::tie(v.kind, v.floor_slope_bytes_per_s, v.survival, v.epochs_alive, v.samples, v.why);
  };
  CHECK(verdict_fields(got.verdict) == verdict_fields(want.verdict));
  const auto epoch_fields = [](const core::Epoch& e) {
    return std::tie(e.born_bytes, e.live_bytes, e.births);
  };
  REQUIRE(got.epochs.size() == want.epochs.size());
  for (size_t i = 0; i < got.epochs.size(); ++i)
    CHECK(epoch_fields(got.epochs[i]) == epoch_fields(want.epochs[i]));
  REQUIRE(got.oldest_age_s.has_value() == want.oldest_age_s.has_value());
  if (want.oldest_age_s) CHECK(*got.oldest_age_s == Approx(*want.oldest_age_s).margin(1e-3));
}

// The cumulative counters of a stack as last seen at or before snapshot `k` (absent: zeros).
core::StackRow last_seen(const std::vector<core::Snapshot>& snaps, int k, uint32_t pid, uint64_t id) {
  for (int i = k; i >= 0; --i)
    if (auto* r = find_stack(snaps[i].stacks, pid, id)) return *r;
  core::StackRow none;
  none.outstanding_bytes = 0;
  return none;
}

// What the reader must return at snapshot `to`, counting from snapshot `from` (-1: the history's start).
void require_snapshot(const core::Snapshot& got, const std::vector<core::Snapshot>& snaps, int to, int from) {
  const core::Snapshot& want = snaps[to];
  CHECK(got.time_unix_ns == want.time_unix_ns);
  CHECK(got.time_ns == want.time_ns);
  CHECK(got.lost.events == want.lost.events);
  CHECK(got.lost.unmatched_frees == want.lost.unmatched_frees);
  CHECK(got.lost.truncated_stacks == want.lost.truncated_stacks);
  REQUIRE(got.processes.size() == want.processes.size());
  for (size_t i = 0; i < want.processes.size(); ++i)
    require_same_process(got.processes[i], want.processes[i]);
  REQUIRE(got.stacks.size() == want.stacks.size());
  for (size_t i = 1; i < got.stacks.size(); ++i)
    CHECK(got.stacks[i - 1].outstanding_bytes >= got.stacks[i].outstanding_bytes);
  for (const auto& w : want.stacks) {
    INFO("stack " << w.stack_id << " at " << to << " from " << from);
    const auto* g = find_stack(got.stacks, w.pid, w.stack_id);
    REQUIRE(g);
    require_same_stack_fields(*g, w);
    const core::StackRow before = from >= 0 ? last_seen(snaps, from, w.pid, w.stack_id) : core::StackRow{};
    CHECK(g->allocs == w.allocs - before.allocs);
    CHECK(g->frees == w.frees - before.frees);
    CHECK(g->allocated_bytes == w.allocated_bytes - before.allocated_bytes);
    const bool was_live = from >= 0 && find_stack(snaps[from].stacks, w.pid, w.stack_id);
    const double seconds = from >= 0 ? double(want.time_unix_ns - snaps[from].time_unix_ns) / 1e9 : 0;
    const double growth =
        from >= 0 ? (double(w.outstanding_bytes) - double(was_live ? before.outstanding_bytes : 0)) / seconds
                  : 0;
    CHECK(g->growth_bytes_per_s == Approx(growth));
  }
}

}  // namespace

TEST_CASE("store: a round trip gives back every field, at several times and over a range", "[store]") {
  TempDir dir;
  const std::string path = dir.file("history.db");
  std::vector<core::Snapshot> snaps;
  {
    auto retention = small_tiers(3600);
    retention.tiers[0].detail_s = 1;  // a detail row with every change: every field reads back exactly
    auto rec = open_recorder(path, retention);
    for (int k = 0; k <= 4; ++k) {
      snaps.push_back(round_trip_snapshot(k));
      auto ok = rec->write(snaps.back(), {1.0, "exact"});
      INFO((ok ? std::string() : ok.error().message));
      REQUIRE(ok);
    }
    auto reader = open_reader(path);  // while the recorder is open
    for (int k = 0; k <= 4; ++k) {
      auto snap = reader->snapshot({std::nullopt, snaps[k].time_unix_ns});
      REQUIRE(snap);
      require_snapshot(*snap, snaps, k, k - 1);
    }
    auto latest = reader->snapshot({});
    REQUIRE(latest);
    require_snapshot(*latest, snaps, 4, 3);
    auto between =
        reader->snapshot({std::nullopt, snaps[3].time_unix_ns + 5 * kS});  // resolves to interval 3
    REQUIRE(between);
    require_snapshot(*between, snaps, 3, 2);
    auto range = reader->snapshot({snaps[0].time_unix_ns, snaps[3].time_unix_ns});
    REQUIRE(range);
    require_snapshot(*range, snaps, 3, 0);
    auto one = reader->snapshot({std::nullopt, snaps[1].time_unix_ns}, 200);
    REQUIRE(one);
    CHECK(one->processes.size() == 1);
    CHECK(one->stacks.size() == 2);
    auto before = reader->snapshot({std::nullopt, kT0 - 1});
    REQUIRE_FALSE(before);
    CHECK(before.error().code == ExitCode::kUsage);
    auto backwards = reader->snapshot({snaps[3].time_unix_ns, snaps[1].time_unix_ns});
    REQUIRE_FALSE(backwards);
    auto pids = reader->pids();
    REQUIRE(pids);
    CHECK(*pids == std::vector<uint32_t>{100, 200});
    auto old = rec->write(snaps[1], {});
    REQUIRE_FALSE(old);  // not after the last interval
  }
  CHECK(listing(dir.path) == std::set<std::string>{"history.db"});  // WAL checkpointed, lock removed
  // Stacks and frames once: A's 4 frames + C's malloc (shared with A) and its caller.
  CHECK(query_u64(path, "SELECT count(*) FROM stack") == 4);
  CHECK(query_u64(path, "SELECT count(*) FROM frame") == 5);
  CHECK(query_u64(path, "SELECT count(*) FROM stack_frame") == 6);
  CHECK(query_u64(path, "SELECT count(*) FROM cgroup") == 2);
  // A, C, D change at 0..3 (D: gone at 2, back at 3); B is stable; interval 4 repeats 3: no rows.
  const std::string per_stack =
      "SELECT count(*) FROM samples s JOIN stack st ON st.id = s.stack WHERE st.stack_id = ";
  CHECK(query_u64(path, per_stack + "161") == 4);
  CHECK(query_u64(path, per_stack + "178") == 1);
  CHECK(query_u64(path, per_stack + "195") == 4);
  CHECK(query_u64(path, per_stack + "212") == 4);
  CHECK(query_u64(path, "SELECT count(*) FROM process_sample") == 10);
  CHECK(query_u64(path, "SELECT value FROM meta WHERE key = 'version'") == 1);
  CHECK((fs::status(path).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
}

TEST_CASE("store: a stable stack writes no rows, and a gone stack reads as absent", "[store]") {
  TempDir dir;
  const std::string path = dir.file("h.db");
  auto rec = open_recorder(path, small_tiers(3600));
  for (int i = 0; i < 30; ++i) {
    core::Snapshot snap;
    snap.time_unix_ns = kT0 + i * kS;
    snap.stacks.push_back(stack_row(1, 1, 4096, 1, 0));  // stable
    if (i < 20) {                                        // grows, then goes
      snap.stacks.push_back(stack_row(1, 2, 10 * i + 10, i + 1, 0));
      snap.stacks.back().verdict.samples = size_t(i);
    }
    REQUIRE(rec->write(snap, {}));
  }
  auto reader = open_reader(path);
  const auto rows = [&](uint64_t id) {
    return query_u64(path,
                     "SELECT count(*) FROM samples s JOIN stack st ON st.id = s.stack WHERE st.stack_id = " +
                         std::to_string(id));
  };
  CHECK(rows(1) == 1);
  CHECK(rows(2) == 21);  // 20 changes and the gone marker
  CHECK(query_u64(path,
                  "SELECT count(*) FROM details d JOIN stack st ON st.id = d.stack WHERE st.stack_id = 1") ==
        1);
  // Details of a changing stack: at most one per tier 0 detail_s (10 s) unless the verdict kind changes.
  CHECK(query_u64(path,
                  "SELECT count(*) FROM details d JOIN stack st ON st.id = d.stack WHERE st.stack_id = 2") ==
        2);
  auto at19 = reader->snapshot({std::nullopt, kT0 + 19 * kS});
  REQUIRE(at19);
  CHECK(at19->stacks.size() == 2);
  auto at25 = reader->snapshot({std::nullopt, kT0 + 25 * kS});
  REQUIRE(at25);
  REQUIRE(at25->stacks.size() == 1);
  CHECK(at25->stacks[0].stack_id == 1);
  CHECK(*at25->stacks[0].oldest_age_s == Approx(1.25 + 25));
  // The final interval writes a stable stack's newer evidence, and nothing when there is none.
  core::Snapshot last;
  last.time_unix_ns = kT0 + 30 * kS;
  last.stacks.push_back(stack_row(1, 1, 4096, 1, 0));
  REQUIRE(rec->write(last, {1, "exact", true}));
  last.time_unix_ns += kS;
  last.stacks[0].verdict.samples = 31;
  REQUIRE(rec->write(last, {1, "exact", true}));
  CHECK(query_u64(path,
                  "SELECT count(*) FROM details d JOIN stack st ON st.id = d.stack WHERE st.stack_id = 1") ==
        2);
  auto final = reader->snapshot({});
  REQUIRE(final);
  CHECK(final->stacks.at(0).verdict.samples == 31);
  auto series = reader->series(1, 2, {kT0 + 15 * kS, std::nullopt});
  REQUIRE(series);
  REQUIRE(series->size() == 6);  // the rows at 15..19 s, the gone marker at 20 s
  CHECK(series->front().time_unix_ns == kT0 + 15 * kS);
  CHECK(series->back().bytes == std::nullopt);
  CHECK(series->at(1).bytes == 170);
}

// ---- downsampling and retention ----------------------------------------------------------------------

namespace {

uint64_t saw(uint64_t i) {
  return 1000 + 37 * (i % 13) + 3 * i;
}  // changes every second
uint64_t steps(uint64_t i) {
  return 500 + 100 * ((i / 7) % 5);
}  // changes every 7 s
uint64_t heap(uint64_t i) {
  return saw(i) + steps(i) + 4096;
}

core::Snapshot tick(uint64_t i, bool with_gone_stack = false) {
  core::Snapshot snap;
  snap.time_unix_ns = kT0 + i * kS;
  snap.time_ns = i * kS;
  core::ProcessRow p;
  p.pid = 1;
  p.comm = "app";
  p.outstanding_bytes = heap(i);
  p.rss_anon_bytes = 2'000'000 + (i % 17) * 1000;
  p.cgroup = core::CgroupMemory{};
  p.cgroup->path = "/app";
  p.cgroup->usage_bytes = 3'000'000 + (i % 11) * 1000;
  p.cgroup->limit_bytes = 8'000'000;
  snap.processes.push_back(p);
  snap.stacks.push_back(stack_row(1, 1, saw(i), i + 1, 0));
  snap.stacks.push_back(stack_row(1, 2, 4096, 1, 0));
  snap.stacks.push_back(stack_row(1, 3, steps(i), i / 7 + 1, 0));
  if (with_gone_stack) {
    auto gone = stack_row(1, 4, 8192, 2, 0);
    gone.symbols = {frame(0x999, "gone_fn", "/bin/gone", "gone.c", 1)};
    snap.stacks.push_back(gone);
  }
  for (auto& row : snap.stacks) row.oldest_age_s = 1.25 + double(i);
  return snap;
}

uint64_t tick_of(uint64_t t) {
  return (t - kT0) / kS;
}

// Which ticks the tiers keep when compacted at tick `now` (small_tiers: 1 s / 60 s, 10 s / 300 s, 60 s).
std::vector<uint64_t> expected_kept(uint64_t ticks, uint64_t now) {
  const uint64_t limit1 = (now - 60) / 10 * 10, limit2 = (now - 300) / 60 * 60;
  std::vector<uint64_t> kept;
  for (uint64_t i = 0; i < ticks; ++i) {
    if (i >= limit1 || (i >= limit2 && i % 10 == 9) || (i < limit2 && i % 60 == 59))
      kept.push_back(kT0 + i * kS);
  }
  return kept;
}

void require_floor_and_peak(store::Reader& reader, const std::vector<uint64_t>& kept, uint64_t id,
                            uint64_t (*value)(uint64_t)) {
  auto series = reader.series(1, id, {});
  REQUIRE(series);
  REQUIRE_FALSE(series->empty());
  for (const auto& p : *series) {
    const auto at = std::lower_bound(kept.begin(), kept.end(), p.time_unix_ns);
    REQUIRE(at != kept.end());
    REQUIRE(*at == p.time_unix_ns);
    const uint64_t first_tick = at == kept.begin() ? 0 : tick_of(*(at - 1)) + 1;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint64_t i = first_tick; i <= tick_of(p.time_unix_ns); ++i)
      lo = std::min(lo, value(i)), hi = std::max(hi, value(i));
    INFO("stack " << id << " row at tick " << tick_of(p.time_unix_ns) << " from tick " << first_tick);
    CHECK(p.bytes == value(tick_of(p.time_unix_ns)));
    CHECK(p.min_bytes == lo);
    CHECK(p.max_bytes == hi);
  }
}

uint64_t constant(uint64_t) {
  return 4096;
}

}  // namespace

TEST_CASE("store: downsampling keeps each bucket's floor and peak, incrementally or at once", "[store]") {
  TempDir dir;
  constexpr uint64_t kTicks = 900;
  const uint64_t now = kT0 + (kTicks - 1) * kS;
  const std::string every_minute = dir.file("a.db"), at_once = dir.file("b.db");
  {
    auto a = open_recorder(every_minute, small_tiers(3600));
    auto b = open_recorder(at_once, small_tiers(3600));
    for (uint64_t i = 0; i < kTicks; ++i) {
      REQUIRE(a->write(tick(i), {}));
      REQUIRE(b->write(tick(i), {}));
      if (i % 60 == 59) REQUIRE(a->compact(kT0 + i * kS));
    }
    REQUIRE(a->compact(now));
    auto ok = b->compact(now);
    INFO((ok ? std::string() : ok.error().message));
    REQUIRE(ok);
  }
  const auto kept = expected_kept(kTicks, tick_of(now));
  for (const auto& path : {every_minute, at_once}) {
    INFO(path);
    CHECK(query_column(path, "SELECT t_unix_ns FROM interval ORDER BY t_unix_ns") == kept);
    auto reader = open_reader(path);
    require_floor_and_peak(*reader, kept, 1, saw);
    require_floor_and_peak(*reader, kept, 2, constant);
    require_floor_and_peak(*reader, kept, 3, steps);
    CHECK(query_u64(path, "SELECT count(*) FROM samples WHERE stack = 2") == 1);
    for (uint64_t t : {kept[0], kept[3], kept[10], kept[30], kept.back()}) {
      auto snap = reader->snapshot({std::nullopt, t});
      REQUIRE(snap);
      REQUIRE(snap->stacks.size() == 3);
      CHECK(find_stack(snap->stacks, 1, 1)->outstanding_bytes == saw(tick_of(t)));
      CHECK(find_stack(snap->stacks, 1, 2)->outstanding_bytes == 4096);
      CHECK(find_stack(snap->stacks, 1, 3)->outstanding_bytes == steps(tick_of(t)));
      CHECK(*find_stack(snap->stacks, 1, 1)->oldest_age_s == Approx(1.25 + double(tick_of(t))));
      CHECK(snap->processes.at(0).outstanding_bytes == heap(tick_of(t)));
    }
    // Counts are conserved: from before the history, every birth is counted, merged rows included.
    auto all = reader->snapshot({kT0 - 1, std::nullopt});
    REQUIRE(all);
    CHECK(find_stack(all->stacks, 1, 1)->allocs == kTicks);
    CHECK(find_stack(all->stacks, 1, 1)->growth_bytes_per_s ==
          Approx((double(saw(kTicks - 1)) - double(saw(tick_of(kept[0])))) /
                 double(kTicks - 1 - tick_of(kept[0]))));
    // The process's heap floor and peak, its rss and cgroup peaks over the first minute.
    const auto col = [&](const char* c) {
      return query_u64(path, "SELECT " + std::string(c) +
                                 " FROM process_sample WHERE interval = (SELECT min(id) FROM interval)");
    };
    uint64_t lo = UINT64_MAX, hi = 0, rss = 0, usage = 0;
    for (uint64_t i = 0; i < 60; ++i) {
      lo = std::min(lo, heap(i)), hi = std::max(hi, heap(i));
      rss = std::max(rss, tick(i).processes[0].rss_anon_bytes.value());
      usage = std::max(usage, tick(i).processes[0].cgroup->usage_bytes.value());
    }
    CHECK(col("heap_min_bytes") == lo);
    CHECK(col("heap_max_bytes") == hi);
    CHECK(col("rss_anon_max_bytes") == rss);
    CHECK(col("cg_usage_max_bytes") == usage);
    // Details thinned per tier: one per 10 min beyond 300 s, per minute beyond 60 s, per 10 s after.
    const auto details =
        query_column(path,
                     "SELECT i.t_unix_ns FROM details d JOIN interval i ON i.id = d.interval "
                     "WHERE d.stack = 1 ORDER BY i.t_unix_ns");
    std::map<std::pair<uint64_t, uint64_t>, int> per_bucket;
    for (uint64_t t : details) {
      const uint64_t age = tick_of(now) - tick_of(t);
      const uint64_t width = age >= 300 + 600 ? 600 : age >= 60 + 60 ? 60 : 10;
      CHECK(++per_bucket[{width, tick_of(t) / width}] == 1);
    }
  }
}

TEST_CASE("store: retention drops what is older than the total, keeping live stacks' state", "[store]") {
  TempDir dir;
  const std::string path = dir.file("r.db");
  constexpr uint64_t kTicks = 1500;
  {
    auto rec = open_recorder(path, small_tiers(600));
    for (uint64_t i = 0; i < kTicks; ++i) {
      REQUIRE(rec->write(tick(i, i < 100), {}));
      if (i % 60 == 59) REQUIRE(rec->compact(kT0 + i * kS));
    }
    REQUIRE(rec->compact(kT0 + (kTicks - 1) * kS));
    CHECK(query_u64(path, "SELECT count(*) FROM stack WHERE stack_id = 4") == 0);
    CHECK(query_u64(path, "SELECT count(*) FROM frame WHERE function = 'gone_fn'") == 0);
    REQUIRE(rec->write(tick(kTicks, true), {}));  // the stack comes back: stored anew
  }
  CHECK(query_u64(path, "SELECT count(*) FROM frame WHERE function = 'gone_fn'") == 1);
  auto reader = open_reader(path);
  auto span = reader->span();
  REQUIRE(span);
  CHECK(span->first_unix_ns >= kT0 + (kTicks - 1 - 600) * kS);
  CHECK(span->intervals == 70 + 29 + 5 + 1);  // 1 s: 1430..1499; 10 s: 1140..1429; 1 min: 899..1139; 1500
  CHECK(query_u64(path, "SELECT count(*) FROM samples WHERE stack = 2") ==
        1);  // carried to the first interval
  auto first = reader->snapshot({std::nullopt, span->first_unix_ns});
  REQUIRE(first);
  REQUIRE(first->stacks.size() == 3);
  CHECK(find_stack(first->stacks, 1, 2)->outstanding_bytes == 4096);
  CHECK(find_stack(first->stacks, 1, 1)->outstanding_bytes == saw(tick_of(span->first_unix_ns)));
  CHECK(*find_stack(first->stacks, 1, 2)->oldest_age_s ==
        Approx(1.25 + double(tick_of(span->first_unix_ns))));
  reader.reset();
  auto again = open_recorder(path, small_tiers(600));  // a new session continues the file
  REQUIRE(again->write(tick(kTicks + 1), {}));
  REQUIRE(again->compact(kT0 + (kTicks + 1) * kS));
}

TEST_CASE("store: a retention shorter than tier 0 drops recent rows, keeping live stacks' state", "[store]") {
  TempDir dir;
  const std::string path = dir.file("short.db");
  auto rec = open_recorder(path, small_tiers(30));
  for (uint64_t i = 0; i < 200; ++i) {
    REQUIRE(rec->write(tick(i), {}));
    if (i % 10 == 9) REQUIRE(rec->compact(kT0 + i * kS));
  }
  auto reader = open_reader(path);
  auto span = reader->span();
  REQUIRE(span);
  CHECK(span->first_unix_ns == kT0 + (199 - 30) * kS);
  CHECK(span->intervals == 31);
  CHECK(query_u64(path, "SELECT count(*) FROM samples WHERE stack = 2") == 1);
  auto first = reader->snapshot({std::nullopt, span->first_unix_ns});
  REQUIRE(first);
  REQUIRE(first->stacks.size() == 3);
  CHECK(find_stack(first->stacks, 1, 3)->outstanding_bytes == steps(169));
  CHECK(find_stack(first->stacks, 1, 2)->verdict.why == "too few samples yet");
  auto series = reader->series(1, 3, {});
  REQUIRE(series);
  CHECK(series->front().time_unix_ns == span->first_unix_ns);
}

// ---- one recorder, readers alongside, crashes ----------------------------------------------------------

TEST_CASE("store: a second recorder is refused while the first is open, readers are not", "[store]") {
  TempDir dir;
  const std::string path = dir.file("lock.db");
  auto first = open_recorder(path);
  REQUIRE(first->write(tick(0), {}));
  const auto mode = [](const std::string& p) { return fs::status(p).permissions() & fs::perms::all; };
  const auto rw = fs::perms::owner_read | fs::perms::owner_write;
  CHECK(mode(path) == rw);
  CHECK(mode(path + "-wal") == rw);
  CHECK(mode(path + "-shm") == rw);
  CHECK(mode(path + ".lock") == rw);
  auto second = store::Recorder::open(path, {});
  REQUIRE_FALSE(second);
  CHECK(second.error().code == ExitCode::kRuntime);
  CHECK_THAT(second.error().message, Catch::Contains("another memsight record") &&
                                         Catch::Contains("pid " + std::to_string(::getpid())));
  auto reader = open_reader(path);
  auto snap = reader->snapshot({});
  REQUIRE(snap);
  CHECK(snap->stacks.size() == 3);
  REQUIRE(first->write(tick(1), {}));
  REQUIRE(first->write(tick(2), {}));
  auto later = reader->snapshot({});  // the same reader sees what was committed since
  REQUIRE(later);
  CHECK(later->time_unix_ns == kT0 + 2 * kS);
  CHECK(find_stack(later->stacks, 1, 1)->outstanding_bytes == saw(2));
  first.reset();
  auto third = open_recorder(path);
  REQUIRE(third->write(tick(3), {}));
  CHECK(reader->span()->intervals == 4);
}

TEST_CASE("store: SIGKILL of the recorder loses nothing committed and leaves a readable file", "[store]") {
  TempDir dir;
  const std::string path = dir.file("crash.db");
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {  // the recorder: a byte on the pipe after each committed interval
    ::close(fds[0]);
    auto rec = store::Recorder::open(path, {});
    if (!rec) ::_exit(2);
    for (uint64_t i = 0;; ++i) {
      core::Snapshot snap = tick(i);
      for (uint64_t s = 10; s < 60; ++s) snap.stacks.push_back(stack_row(1, s, 100 * s + i, i + 1, 0));
      if (!(*rec)->write(snap, {})) ::_exit(3);
      const char byte = 'x';
      if (::write(fds[1], &byte, 1) != 1) ::_exit(4);
    }
  }
  ::close(fds[1]);
  constexpr int kCommitted = 25;
  int got = 0;
  char byte;
  while (got < kCommitted && ::read(fds[0], &byte, 1) == 1) ++got;
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(fds[0]);
  REQUIRE(got == kCommitted);
  CHECK(WIFSIGNALED(status));
  auto reader = open_reader(path);
  auto span = reader->span();
  REQUIRE(span);
  CHECK(span->intervals >= kCommitted);
  auto snap = reader->snapshot({});
  REQUIRE(snap);
  CHECK(snap->stacks.size() == 53);
  auto rec = open_recorder(path);  // the kernel dropped the dead recorder's lock
  REQUIRE(rec->write(tick(span->intervals + 10), {}));
}

// ---- bad input ------------------------------------------------------------------------------------------

namespace {

void require_refused(const std::string& path, ExitCode code, const std::string& words) {
  const auto names = listing(fs::path(path).parent_path());
  const std::string before = contents(path);
  auto rec = store::Recorder::open(path, {});
  REQUIRE_FALSE(rec);
  CHECK(rec.error().code == code);
  CHECK_THAT(rec.error().message, Catch::Contains(words));
  auto reader = store::Reader::open(path);
  REQUIRE_FALSE(reader);
  CHECK(reader.error().code == code);
  CHECK_THAT(reader.error().message, Catch::Contains(words));
  CHECK(contents(path) == before);
  CHECK(listing(fs::path(path).parent_path()) == names);  // no -wal, -shm or .lock left behind
}

// A memsight database of a few pages, closed.
void make_database(const std::string& path) {
  auto rec = open_recorder(path);
  for (uint64_t i = 0; i < 40; ++i) {
    core::Snapshot snap = tick(i);
    for (uint64_t s = 10; s < 40; ++s) snap.stacks.push_back(stack_row(1, s, 100 * s + i, i + 1, 0));
    REQUIRE(rec->write(snap, {}));
  }
}

// 1: refused as it should be; 0: opened; 2: could not drop privileges.
int open_as_nobody(const std::string& path) {
  const pid_t child = ::fork();
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    auto rec = store::Recorder::open(path, {});
    ::_exit(rec ? 0 : rec.error().code == ExitCode::kRuntime ? 1 : 3);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("store: bad paths and files that are not ours give clear errors and stay untouched", "[store]") {
  TempDir dir;
  SECTION("a missing directory") {
    auto rec = store::Recorder::open(dir.file("missing/h.db"), {});
    REQUIRE_FALSE(rec);
    CHECK(rec.error().code == ExitCode::kUsage);
    CHECK_THAT(rec.error().message, Catch::Contains("does not exist") || Catch::Contains("No such file"));
    auto reader = store::Reader::open(dir.file("missing/h.db"));
    REQUIRE_FALSE(reader);
    CHECK(reader.error().code == ExitCode::kUsage);
    CHECK(listing(dir.path).empty());
  }
  SECTION("a read-only directory") {
    const fs::path ro = dir.path / "ro";
    fs::create_directory(ro);
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                            fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
    const std::string path = (ro / "h.db").string();
    if (::geteuid() != 0) {
      auto rec = store::Recorder::open(path, {});
      REQUIRE_FALSE(rec);
      CHECK(rec.error().code == ExitCode::kRuntime);
      CHECK_THAT(rec.error().message, Catch::Contains("writable"));
    } else {  // root writes anywhere: try as nobody, else a place even root can't write
      fs::permissions(dir.path, fs::perms::others_read | fs::perms::others_exec, fs::perm_options::add);
      const int as_nobody = open_as_nobody(path);
      if (as_nobody == 2) {
        auto rec = store::Recorder::open("/sys/memsight-store-test.db", {});
        REQUIRE_FALSE(rec);
        CHECK(rec.error().code == ExitCode::kRuntime);
      } else {
        CHECK(as_nobody == 1);
      }
    }
    CHECK(listing(ro).empty());
  }
  SECTION("a text file") {
    const std::string path = dir.file("notes.txt");
    std::ofstream(path) << "not a database\n";
    require_refused(path, ExitCode::kUsage, "not a memsight database");
  }
  SECTION("a directory") {
    fs::create_directory(dir.path / "d.db");
    auto rec = store::Recorder::open(dir.file("d.db"), {});
    REQUIRE_FALSE(rec);
    CHECK(rec.error().code == ExitCode::kUsage);
  }
  SECTION("another SQLite database, in either journal mode") {
    const std::string path = dir.file("other.db"), wal = dir.file("other-wal.db");
    exec_sql(path, "CREATE TABLE t (x); INSERT INTO t VALUES (1)");
    exec_sql(wal,
             "PRAGMA journal_mode = WAL; CREATE TABLE meta (key, value); INSERT INTO meta VALUES ('a', 'b')");
    require_refused(path, ExitCode::kUsage, "not a memsight database");
    require_refused(wal, ExitCode::kUsage, "not a memsight database");
  }
  SECTION("a database of a future schema") {
    const std::string path = dir.file("future.db");
    make_database(path);
    exec_sql(path,
             "UPDATE meta SET value = 'memsight.db/2' WHERE key = 'schema'; "
             "UPDATE meta SET value = '2' WHERE key = 'version'");
    require_refused(path, ExitCode::kUsage, "newer memsight");
  }
  SECTION("a truncated database") {
    const std::string path = dir.file("cut.db");
    make_database(path);
    fs::resize_file(path, fs::file_size(path) / 2);
    require_refused(path, ExitCode::kRuntime, "damaged");
  }
  SECTION("a corrupt database") {
    const std::string path = dir.file("bad.db");
    make_database(path);
    std::string bytes = contents(path);
    REQUIRE(bytes.size() > 4 * 4096);
    for (size_t i = 2 * 4096; i < bytes.size() - 4096; ++i) bytes[i] = static_cast<char>(0xa5 ^ (i * 7));
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    require_refused(path, ExitCode::kRuntime, "damaged");
  }
  SECTION("no file at all, for the reader") {
    auto reader = store::Reader::open(dir.file("none.db"));
    REQUIRE_FALSE(reader);
    CHECK(reader.error().code == ExitCode::kUsage);
    CHECK(listing(dir.path).empty());
  }
}

TEST_CASE("store: --retention durations", "[store]") {
  CHECK(store::Retention::parse("48h")->total_s == 48 * 3600);
  CHECK(store::Retention::parse("90m")->total_s == 90 * 60);
  CHECK(store::Retention::parse("2d")->total_s == 2 * 86400);
  CHECK(store::Retention::parse("3600")->total_s == 3600);
  CHECK(store::Retention::parse("3600s")->total_s == 3600);
  for (const char* bad : {"", "h", "0", "-1", "1.5h", "5w", "10 m", "99999999999999999999"}) {
    INFO(bad);
    auto r = store::Retention::parse(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ExitCode::kUsage);
  }
  store::Retention r;
  CHECK(r.validate());
  r.tiers[1].resolution_s = 7;  // not a multiple of tier 0's... and detail_s no multiple of it
  CHECK_FALSE(r.validate());
  CHECK_FALSE(store::Recorder::open("/tmp/never-created.db", r));
}

// ---- size -------------------------------------------------------------------------------------------------

// Hidden (run with `store_test "[size]"`): a synthetic recording of 1,000 stacks, half of them changing
// every second, with the default tiers and a compaction every minute. MEMSIGHT_SIZE_HOURS (default 1)
// sets its length; it prints the database's size and what each table takes.
TEST_CASE("store: size of a synthetic recording", "[.][size]") {
  const char* hours_env = std::getenv("MEMSIGHT_SIZE_HOURS");
  const uint64_t seconds = uint64_t(3600 * (hours_env ? std::atof(hours_env) : 1.0));
  constexpr size_t kStacks = 1000;
  TempDir dir;
  const std::string path = dir.file("size.db");
  std::mt19937_64 rng(42);
  std::vector<core::StackRow> stacks(kStacks);
  for (size_t s = 0; s < kStacks; ++s) {
    auto& row = stacks[s];
    row = stack_row(4242, rng(), 4096 + rng() % 1'000'000, 1000, 0);
    row.outstanding_allocs = row.outstanding_bytes / 64;
    for (int f = 0; f < 8; ++f) {  // frames from a pool of 3,000 call sites
      const uint64_t site = f == 0 ? rng() % 4 : rng() % 3000;
      row.frames.push_back(0x400000 + site * 16);
      row.symbols.push_back(frame(0x400000 + site * 16, "function_name_of_some_length", "/usr/bin/server",
                                  "src/some/file.cpp", uint32_t(site)));
    }
    row.verdict = {s % 3 ? core::VerdictKind::kBounded : core::VerdictKind::kLeak,
                   0,
                   0.5,
                   0.5,
                   0,
                   "grew, then plateaued"};
    row.epochs.assign(32, core::Epoch{50'000, 20'000, 300});
  }
  const auto start = std::chrono::steady_clock::now();
  {
    auto rec = open_recorder(path);
    for (uint64_t i = 0; i < seconds; ++i) {
      core::Snapshot snap = tick(i);
      snap.processes[0].pid = 4242;
      snap.stacks.clear();
      for (size_t s = 0; s < kStacks; ++s) {
        auto& row = stacks[s];
        if (s % 2 == 0) {  // the changing half
          const uint64_t born = rng() % 20 + 1, died = rng() % (born + 1);
          row.allocs += born, row.frees += died, row.allocated_bytes += born * 96;
          row.outstanding_bytes = row.outstanding_bytes + born * 96 - died * 90;
          row.outstanding_allocs += born - died;
          row.verdict.floor_slope_bytes_per_s = double(rng() % 100000) / 7;
          row.verdict.survival = double(rng() % 1000) / 1000;
          row.verdict.samples = std::min<size_t>(128, i);
          row.epochs.back().born_bytes += born * 96, row.epochs.back().live_bytes += (born - died) * 96;
          row.epochs.back().births += born;
        }
        row.oldest_age_s = 1.25 + double(i);
        snap.stacks.push_back(row);
      }
      REQUIRE(rec->write(snap, {}));
      if (i % 60 == 59) REQUIRE(rec->compact(snap.time_unix_ns));
    }
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  {
    std::ifstream io("/proc/self/io");
    std::string line;
    while (std::getline(io, line))
      if (line.rfind("write_bytes", 0) == 0 || line.rfind("wchar", 0) == 0) WARN(line);
  }
  const uint64_t size = fs::file_size(path);
  WARN("synthetic recording: " << seconds << " s of 1,000 stacks (500 changing every second), written in "
                               << elapsed << " s: " << size << " bytes (" << double(size) / 1e6 << " MB)");
  for (const char* table : {"sample", "sample_recent", "detail", "detail_recent", "process_sample",
                            "interval", "stack", "stack_frame", "frame"}) {
    const uint64_t bytes =
        query_u64(path, std::string("SELECT sum(pgsize) FROM dbstat WHERE name = '") + table + "'");
    const uint64_t rows = query_u64(path, std::string("SELECT count(*) FROM ") + table);
    WARN("  " << table << ": " << rows << " rows, " << bytes << " bytes");
  }
  const auto reopen = std::chrono::steady_clock::now();
  auto reader = open_reader(path);
  REQUIRE(reader->snapshot({}));
  WARN("  Reader::open + snapshot: "
       << std::chrono::duration<double>(std::chrono::steady_clock::now() - reopen).count() << " s");
}

TEST_CASE("store: OOM episodes are numbered across recordings and read back by number or pid", "[store]") {
  TempDir dir;
  const std::string path = dir.file("episodes.db");
  {
    auto rec = open_recorder(path);
    REQUIRE(rec->write(tick(0), {}));
    CHECK(*rec->next_episode() == 1);
    REQUIRE(rec->write_episode({1, kT0, "oom_kill", 41, "leak", "{\"episode\":1}", "Verdict: MEMORY LEAK"}));
    CHECK(*rec->next_episode() == 2);
    REQUIRE(rec->write_episode({2, kT0 + kS, "alloc_failure", 42, "burst", "{\"episode\":2}", "Verdict: BURST"}));
  }
  auto again = open_recorder(path);  // a new recording continues the numbering
  CHECK(*again->next_episode() == 3);
  auto reader = open_reader(path);
  auto all = reader->episodes();
  REQUIRE(all);
  REQUIRE(all->size() == 2);
  CHECK((*all)[0].verdict == "leak");
  CHECK((*all)[1].kind == "alloc_failure");
  CHECK((*all)[1].text == "Verdict: BURST");
  CHECK(reader->episodes(2)->front().pid == 42);
  CHECK(reader->episodes(std::nullopt, 41)->front().number == 1);
  CHECK(reader->episodes(7)->empty());
}
