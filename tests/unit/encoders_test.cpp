// The folded, pprof and Prometheus encoders: their output read back the way the tools read it, and,
// where the tools are installed, by the tools themselves (go tool pprof, promtool).
#include "snapshot_fixture.hpp"
#include "report/encoders.hpp"

#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace memsight;

namespace {

core::Frame frame(uint64_t address, const char* function, bool inlined = false) {
  core::Frame f;
  f.address = address;
  if (function) f.function = function;
  f.inlined = inlined;
  return f;
}

// malloc <- helper [inlined into leak_block] <- leak_block <- main, in pid 42 ("app").
core::StackRow leak_row() {
  core::StackRow row = test::app_stack_row();
  row.verdict.kind = core::VerdictKind::kLeak;
  row.symbols = {frame(0x1000, "malloc"), frame(0x2000, "helper", true), frame(0x2000, "leak_block"),
                 frame(0x3000, "main")};
  row.symbols[0].module = "/usr/lib/x86_64-linux-gnu/libc.so.6";
  row.symbols[1].file = "/src/app/helper.h";
  row.symbols[1].line = 7;
  row.symbols[2].file = "/src/app/leak.c";
  row.symbols[2].line = 42;
  for (size_t i = 1; i < row.symbols.size(); ++i) row.symbols[i].module = "/usr/bin/app";
  return row;
}

core::Snapshot sample() {
  core::Snapshot snap = test::app_snapshot();
  snap.lost = {5, 3, 1, 7};
  snap.processes[0].outstanding_bytes = 1536 + 100;
  snap.processes[0].outstanding_allocs = 3;
  snap.stacks[0] = leak_row();
  core::StackRow unknown;  // not resolved yet: bare addresses
  unknown.stack_id = 0xdef;
  unknown.pid = 42;
  unknown.outstanding_bytes = 100;
  unknown.outstanding_allocs = 1;
  unknown.allocated_bytes = 100;
  unknown.allocs = 1;
  unknown.frames = {0x1000, 0x4444};
  snap.stacks.push_back(unknown);
  return snap;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Runs a shell command; its exit status and what it printed (stdout and stderr).
std::pair<int, std::string> run(const std::string& command) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return {-1, ""};
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

bool on_path(const std::string& tool) {
  return run("command -v " + tool).first == 0;
}

std::filesystem::path temp_dir() {
  std::string templ = (std::filesystem::temp_directory_path() / "encoders_test.XXXXXX").string();
  REQUIRE(mkdtemp(templ.data()));
  return templ;
}

}  // namespace

// ---- folded ---------------------------------------------------------------------------------------------

TEST_CASE("folded: outermost first, inlined frames included, addresses for unknown names") {
  const auto lines = lines_of(report::render_folded(sample()));
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "0x4444;0x1000 100");
  CHECK(lines[1] == "main;leak_block;helper;malloc 1536");
}

TEST_CASE("folded: the value chosen, zero-valued stacks left out") {
  auto snap = sample();
  snap.stacks[1].outstanding_allocs = 0;
  CHECK(report::render_folded(snap, report::FoldedValue::kOutstandingAllocs) ==
        "main;leak_block;helper;malloc 2\n");
  CHECK(report::render_folded(snap, report::FoldedValue::kAllocatedBytes).find("malloc 2048\n") !=
        std::string::npos);
  CHECK(report::render_folded(snap, report::FoldedValue::kAllocs).find("malloc 3\n") != std::string::npos);
  CHECK(report::parse_folded_value("allocated_bytes") == report::FoldedValue::kAllocatedBytes);
  CHECK_FALSE(report::parse_folded_value("bytes"));
}

TEST_CASE("folded: identical paths merged, separators in names replaced") {
  core::Snapshot snap;
  auto a = leak_row();
  auto b = leak_row();
  b.stack_id = 0xabd;
  b.symbols[3].address = 0x3010;  // another call site in main: the same function chain
  snap.stacks = {a, b};
  CHECK(report::render_folded(snap) == "main;leak_block;helper;malloc 3072\n");

  snap.stacks[0].symbols[3].function = "operator()<a;b>\nx";
  const auto text = report::render_folded(snap);
  CHECK(text.find("operator()<a:b> x;leak_block;helper;malloc 1536\n") != std::string::npos);
  CHECK(lines_of(text).size() == 2);
}

TEST_CASE("folded: several processes get a comm (pid) root, truncated stacks a marker") {
  auto snap = sample();
  auto other = leak_row();
  other.pid = 7;
  other.truncated = true;
  snap.stacks.push_back(other);
  core::ProcessRow p;
  p.pid = 7;
  p.comm = "wor;ker";
  snap.processes.push_back(p);
  const auto lines = lines_of(report::render_folded(snap));
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "app (42);0x4444;0x1000 100");
  CHECK(lines[1] == "app (42);main;leak_block;helper;malloc 1536");
  CHECK(lines[2] == "wor:ker (7);[truncated];main;leak_block;helper;malloc 1536");
}

TEST_CASE("leaf: the first frame after the allocator entry that is not inlined") {
  CHECK(report::leaf_name(leak_row()) == "leak_block");
  core::StackRow only_malloc;
  only_malloc.symbols = {frame(0x1000, "malloc")};
  CHECK(report::leaf_name(only_malloc) == "malloc");
  core::StackRow bare;
  bare.frames = {0x1000, 0x4444};
  CHECK(report::leaf_name(bare) == "0x4444");
}

// ---- pprof: a tiny protobuf reader for the round trip --------------------------------------------------

namespace {

std::string gunzip(const std::string& in) {
  z_stream z{};
  REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);
  std::string out(in.size() * 20 + 4096, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int status = inflate(&z, Z_FINISH);
  out.resize(z.total_out);
  inflateEnd(&z);
  REQUIRE(status == Z_STREAM_END);
  return out;
}

// A message as field number -> values: varints as numbers, length-delimited fields as bytes.
struct Msg {
  std::multimap<uint32_t, uint64_t> ints;
  std::multimap<uint32_t, std::string> bytes;

  std::vector<uint64_t> all(uint32_t f) const {
    std::vector<uint64_t> v;
    for (auto [it, end] = ints.equal_range(f); it != end; ++it) v.push_back(it->second);
    return v;
  }
  uint64_t one(uint32_t f) const { return ints.count(f) ? ints.find(f)->second : 0; }
  std::vector<std::string> subs(uint32_t f) const {
    std::vector<std::string> v;
    for (auto [it, end] = bytes.equal_range(f); it != end; ++it) v.push_back(it->second);
    return v;
  }
};

uint64_t read_varint(const std::string& s, size_t& i) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    REQUIRE(i < s.size());
    const auto b = static_cast<uint8_t>(s[i++]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
}

Msg parse(const std::string& s) {
  Msg m;
  for (size_t i = 0; i < s.size();) {
    const uint64_t key = read_varint(s, i);
    const auto f = static_cast<uint32_t>(key >> 3);
    if ((key & 7) == 0) {
      m.ints.emplace(f, read_varint(s, i));
    } else {
      REQUIRE((key & 7) == 2);
      const uint64_t len = read_varint(s, i);
      REQUIRE(i + len <= s.size());
      m.bytes.emplace(f, s.substr(i, len));
      i += len;
    }
  }
  return m;
}

std::vector<uint64_t> unpack(const std::string& s) {
  std::vector<uint64_t> v;
  for (size_t i = 0; i < s.size();) v.push_back(read_varint(s, i));
  return v;
}

}  // namespace

TEST_CASE("pprof: a profile.proto that reads back") {
  const Msg profile = parse(gunzip(report::render_pprof(sample())));
  const auto strings = profile.subs(6);
  REQUIRE(!strings.empty());
  CHECK(strings[0].empty());
  const auto str = [&](uint64_t i) { return i < strings.size() ? strings[i] : std::string("<bad index>"); };

  std::vector<std::string> types;
  for (const auto& vt : profile.subs(1)) types.push_back(str(parse(vt).one(1)) + "/" + str(parse(vt).one(2)));
  CHECK(types == std::vector<std::string>{"inuse_space/bytes", "inuse_objects/count", "alloc_space/bytes",
                                          "alloc_objects/count"});
  CHECK(str(profile.one(14)) == "inuse_space");
  CHECK(profile.one(9) == 1700000000000000000);
  CHECK(str(profile.one(13)) == "memsight lost: 5 events, 3 unmatched frees, 1 truncated stacks, 7 allocations "
                                "untracked at the --max-blocks cap (totals are lower bounds)");

  std::map<uint64_t, std::string> functions;
  for (const auto& fn : profile.subs(5)) functions[parse(fn).one(1)] = str(parse(fn).one(2));
  std::map<uint64_t, std::string> mappings;
  for (const auto& m : profile.subs(3)) mappings[parse(m).one(1)] = str(parse(m).one(5));
  std::map<uint64_t, Msg> locations;
  for (const auto& l : profile.subs(4)) locations[parse(l).one(1)] = parse(l);
  // A location's names, innermost first, "0x..." when it has none.
  const auto names = [&](uint64_t id) {
    std::vector<std::string> out;
    for (const auto& line : locations.at(id).subs(4)) out.push_back(functions.at(parse(line).one(1)));
    if (out.empty()) out.push_back("addr " + std::to_string(locations.at(id).one(3)));
    return out;
  };

  const auto samples = profile.subs(2);
  REQUIRE(samples.size() == 2);
  const Msg leak = parse(samples[0]);
  CHECK(unpack(leak.subs(2).at(0)) == std::vector<uint64_t>{1536, 2, 2048, 3});
  const auto ids = unpack(leak.subs(1).at(0));
  REQUIRE(ids.size() == 3);  // inlined helper is a line of leak_block's location, not a location
  CHECK(names(ids[0]) == std::vector<std::string>{"malloc"});
  CHECK(names(ids[1]) == std::vector<std::string>{"helper", "leak_block"});
  CHECK(names(ids[2]) == std::vector<std::string>{"main"});
  CHECK(locations.at(ids[1]).one(3) == 0x2000);
  CHECK(mappings.at(locations.at(ids[0]).one(2)) == "/usr/lib/x86_64-linux-gnu/libc.so.6");
  CHECK(mappings.at(locations.at(ids[2]).one(2)) == "/usr/bin/app");

  std::map<std::string, std::string> labels;
  for (const auto& l : leak.subs(3)) {
    const Msg label = parse(l);
    labels[str(label.one(1))] = label.ints.count(3) ? std::to_string(label.one(3)) : str(label.one(2));
  }
  CHECK(labels == std::map<std::string, std::string>{{"pid", "42"}, {"verdict", "leak"}});

  const auto bare = unpack(parse(samples[1]).subs(1).at(0));
  REQUIRE(bare.size() == 2);
  CHECK(names(bare[0]) == std::vector<std::string>{"addr " + std::to_string(0x1000)});
  CHECK(names(bare[1]) == std::vector<std::string>{"addr " + std::to_string(0x4444)});
}

TEST_CASE("pprof: truncated stacks end in a marker, empty stacks are left out") {
  core::Snapshot snap;
  snap.stacks = {leak_row(), leak_row()};
  snap.stacks[0].truncated = true;
  snap.stacks[1] = core::StackRow{};  // nothing allocated, nothing live
  const Msg profile = parse(gunzip(report::render_pprof(snap)));
  const auto samples = profile.subs(2);
  REQUIRE(samples.size() == 1);
  const auto ids = unpack(parse(samples[0]).subs(1).at(0));
  REQUIRE(ids.size() == 4);
  const auto strings = profile.subs(6);
  std::map<uint64_t, std::string> functions;
  for (const auto& fn : profile.subs(5)) functions[parse(fn).one(1)] = strings.at(parse(fn).one(2));
  std::vector<std::string> outermost;
  for (const auto& l : profile.subs(4)) {
    const Msg loc = parse(l);
    if (loc.one(1) == ids.back()) outermost.push_back(functions.at(parse(loc.subs(4).at(0)).one(1)));
  }
  CHECK(outermost == std::vector<std::string>{"[truncated]"});
}

TEST_CASE("pprof: go tool pprof reads the profile") {
  if (!on_path("go")) {
    WARN("go is not on PATH: go tool pprof not run");
    return;
  }
  const auto dir = temp_dir();
  const auto file = dir / "heap.pb.gz";
  {
    std::ofstream out(file, std::ios::binary);
    out << report::render_pprof(sample());
  }
  // pprof writes under $HOME and $PPROF_TMPDIR, and would try to symbolize addresses: none of that.
  const std::string env = "HOME=" + dir.string() + " PPROF_TMPDIR=" + dir.string() + " GOTELEMETRY=off ";
  const auto [status, raw] = run(env + "go tool pprof -symbolize=none -raw " + file.string());
  INFO(raw);
  CHECK(status == 0);
  CHECK(raw.find("inuse_space/bytes[dflt]") != std::string::npos);
  std::string squeezed;  // columns are padded: one space between words
  for (char c : raw) {
    if (c != ' ' || squeezed.empty() || squeezed.back() != ' ') squeezed += c;
  }
  CHECK(squeezed.find(" 1536 2 2048 3: ") != std::string::npos);
  CHECK(raw.find("malloc") != std::string::npos);
  CHECK(raw.find("leak_block") != std::string::npos);
  CHECK(raw.find("helper") != std::string::npos);
  CHECK(raw.find("verdict:[leak]") != std::string::npos);
  CHECK(raw.find("pid:[42]") != std::string::npos);

  const auto [top_status, top] = run(env + "go tool pprof -symbolize=none -top " + file.string());
  INFO(top);
  CHECK(top_status == 0);
  const auto top_lines = lines_of(top);
  const auto malloc_line = std::find_if(top_lines.begin(), top_lines.end(),
                                        [](const auto& l) { return l.find(" malloc") != std::string::npos; });
  REQUIRE(malloc_line != top_lines.end());
  CHECK(malloc_line->find("1536B") != std::string::npos);  // all of malloc's bytes are its own (flat)
  std::filesystem::remove_all(dir);
}

// ---- Prometheus ---------------------------------------------------------------------------------------

namespace {

core::Snapshot metrics_sample() {
  auto snap = sample();
  snap.processes[0].comm = "we\"ird\\na\nme\xff";  // and a byte that is not UTF-8
  snap.processes[0].rss_anon_bytes = 1 << 20;
  core::CgroupMemory cg;
  cg.path = "/system.slice/app.service";
  cg.usage_bytes = 4 << 20;
  cg.limit_bytes = 8 << 20;
  snap.processes[0].cgroup = cg;
  for (int i = 0; i < 30; ++i) {
    auto row = leak_row();
    row.stack_id = 0x100 + i;
    row.outstanding_bytes = 10 + i;
    row.verdict.kind = core::VerdictKind::kBounded;
    snap.stacks.push_back(row);
  }
  return snap;
}

struct Exposition {
  std::map<std::string, std::string> help, type;  // by family
  std::vector<std::tuple<std::string, std::map<std::string, std::string>, std::string>> series;
};

bool is_name(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// Reads the text format far enough to check it: comments, names, labels with escapes, values.
Exposition read_exposition(const std::string& text) {
  Exposition e;
  for (const auto& line : lines_of(text)) {
    INFO(line);
    if (line.rfind("# ", 0) == 0) {
      std::istringstream in(line.substr(2));
      std::string kind, name, rest;
      in >> kind >> name;
      std::getline(in >> std::ws, rest);
      REQUIRE((kind == "HELP" || kind == "TYPE"));
      REQUIRE(is_name(name));
      (kind == "HELP" ? e.help : e.type)[name] = rest;
      continue;
    }
    size_t i = line.find_first_of("{ ");
    REQUIRE(i != std::string::npos);
    const std::string name = line.substr(0, i);
    REQUIRE(is_name(name));
    std::map<std::string, std::string> labels;
    if (line[i] == '{') {
      ++i;
      while (line.at(i) != '}') {
        const size_t eq = line.find("=\"", i);
        REQUIRE(eq != std::string::npos);
        const std::string key = line.substr(i, eq - i);
        REQUIRE(is_name(key));
        std::string value;
        for (i = eq + 2; line.at(i) != '"'; ++i) {
          if (line[i] == '\\') {
            const char c = line.at(++i);
            REQUIRE((c == '\\' || c == '"' || c == 'n'));
            value += c == 'n' ? '\n' : c;
          } else {
            value += line[i];
          }
        }
        labels[key] = value;
        if (line.at(++i) == ',') ++i;
      }
      ++i;
    }
    REQUIRE(line.at(i) == ' ');
    const std::string value = line.substr(i + 1);
    REQUIRE(value.find_first_not_of("0123456789.e+-") == std::string::npos);
    e.series.emplace_back(name, labels, value);
  }
  return e;
}

}  // namespace

TEST_CASE("prometheus: families documented, labels escaped, stacks bounded, every verdict counted") {
  report::MetricsExtras extras;
  extras.top_stacks = 5;
  extras.oom_kills = 2;
  extras.recorder = report::RecorderStats{100, 1, 4};
  const auto text = report::render_prometheus(metrics_sample(), extras);
  const auto e = read_exposition(text);

  std::map<std::string, std::vector<std::pair<std::map<std::string, std::string>, std::string>>> by_name;
  for (const auto& [name, labels, value] : e.series) {
    CHECK(name.rfind("memsight_", 0) == 0);
    CHECK(e.help.count(name) == 1);
    CHECK(e.type.count(name) == 1);
    by_name[name].emplace_back(labels, value);
  }
  const auto& bytes = by_name["memsight_process_outstanding_bytes"];
  REQUIRE(bytes.size() == 1);
  CHECK(bytes[0].first.at("comm") == "we\"ird\\na\nme?");
  CHECK(bytes[0].first.at("pid") == "42");
  CHECK(bytes[0].second == "1636");
  CHECK(by_name["memsight_process_rss_anon_bytes"].at(0).second == std::to_string(1 << 20));
  CHECK(by_name["memsight_cgroup_limit_bytes"].at(0).first.at("cgroup") == "/system.slice/app.service");
  CHECK(e.type.at("memsight_lost_events_total") == "counter");
  CHECK(by_name["memsight_lost_events_total"].at(0).second == "5");
  CHECK(by_name["memsight_lost_refused_blocks_total"].at(0).second == "7");
  CHECK(by_name["memsight_oom_kills_total"].at(0).second == "2");
  CHECK(by_name["memsight_recorder_records_decoded_total"].at(0).second == "100");

  const auto& stacks = by_name["memsight_stack_outstanding_bytes"];
  REQUIRE(stacks.size() == 5);
  CHECK(stacks[0].second == "1536");
  CHECK(stacks[0].first.at("stack") == "0000000000000abc");
  CHECK(stacks[0].first.at("leaf") == "leak_block");
  CHECK(stacks[0].first.at("verdict") == "leak");
  CHECK(stacks[1].second == "100");
  CHECK(stacks[2].second == "39");

  std::map<std::string, std::string> verdicts;
  for (const auto& [labels, value] : by_name["memsight_stacks"]) verdicts[labels.at("verdict")] = value;
  CHECK(verdicts == std::map<std::string, std::string>{{"undecided", "1"},
                                                       {"leak", "1"},
                                                       {"bounded", "30"},
                                                       {"transient", "0"},
                                                       {"backlog", "0"},
                                                       {"startup", "0"}});
}

TEST_CASE("prometheus: unknown numbers are left out, not zero") {
  const auto text = report::render_prometheus(sample());
  CHECK(text.find("memsight_process_rss_anon_bytes") == std::string::npos);
  CHECK(text.find("memsight_cgroup_") == std::string::npos);
  CHECK(text.find("memsight_recorder_") == std::string::npos);
  CHECK(text.find("memsight_oom_kills_total 0\n") != std::string::npos);
}

TEST_CASE("prometheus: promtool accepts the exposition") {
  if (!on_path("promtool")) {
    WARN("promtool is not on PATH: promtool check metrics not run");
    return;
  }
  const auto dir = temp_dir();
  const auto file = dir / "metrics.txt";
  {
    std::ofstream out(file);
    report::MetricsExtras extras;
    extras.recorder = report::RecorderStats{};
    out << report::render_prometheus(metrics_sample(), extras);
  }
  const auto [status, out] = run("promtool check metrics < " + file.string());
  INFO(out);
  CHECK(status == 0);
  CHECK(out.empty());  // no lint complaints either
  std::filesystem::remove_all(dir);
}
