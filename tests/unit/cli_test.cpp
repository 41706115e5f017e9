#include <catch2/catch.hpp>

#include "attach/preflight.hpp"
#include "cli/options.hpp"

using namespace memsight;
using cli::Invocation;

namespace {

Result<Invocation> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "memsight");
  return cli::parse_command_line(args);
}

}  // namespace

TEST_CASE("trace -p accepts repeated and comma-separated pids") {
  auto inv = parse({"trace", "-p", "12,34", "-p", "56", "--interval", "0.5", "--top", "3", "--json"});
  REQUIRE(inv);
  CHECK(inv->kind == Invocation::Kind::kTrace);
  CHECK(inv->trace.session.pids == std::vector<uint32_t>{12, 34, 56});
  CHECK(inv->trace.session.interval_s == 0.5);
  CHECK(inv->trace.session.top == 3);
  CHECK(inv->trace.json);
  CHECK_FALSE(inv->trace.session.duration_s);
}

TEST_CASE("trace -- COMMAND keeps the command's own options") {
  auto inv = parse({"trace", "--duration", "10", "--min-age", "2", "-o", "out.jsonl", "--", "./server", "--port",
                    "80", "-p", "9"});
  REQUIRE(inv);
  CHECK(inv->trace.session.command == std::vector<std::string>{"./server", "--port", "80", "-p", "9"});
  CHECK(inv->trace.session.pids.empty());
  CHECK(inv->trace.session.duration_s == 10.0);
  CHECK(inv->trace.session.min_age_s == 2.0);
  CHECK(inv->trace.output == "out.jsonl");
}

TEST_CASE("defaults follow the contract") {
  auto inv = parse({"trace", "-p", "1"});
  REQUIRE(inv);
  CHECK(inv->trace.session.interval_s == 5.0);
  CHECK(inv->trace.session.top == 10);
  CHECK(inv->trace.session.min_age_s == 0);
  CHECK_FALSE(inv->trace.json);
  CHECK_FALSE(inv->trace.output);
  CHECK_FALSE(inv->trace.session.max_blocks);  // the tracker's own default
}

TEST_CASE("trace and record take --max-blocks for the tracker, and 0 lifts the cap") {
  auto trace = parse({"trace", "-p", "1", "--max-blocks", "1000"});
  REQUIRE(trace);
  CHECK(trace->trace.session.max_blocks == 1000u);
  auto record = parse({"record", "-p", "1", "--db", "x.db", "--max-blocks", "0"});
  REQUIRE(record);
  CHECK(record->record.session.max_blocks == 0u);
  CHECK_FALSE(parse({"trace", "-p", "1", "--max-blocks", "-5"}));
  CHECK_FALSE(parse({"trace", "-p", "1", "--max-blocks", "many"}));
}

TEST_CASE("ring sizes: a power of two from a page to 1 GiB, and the error says which to try") {
  auto small = parse({"trace", "-p", "1", "--ring-bytes", "16384"});
  REQUIRE(small);
  CHECK(small->trace.session.ring_bytes == 16384u);
  CHECK_FALSE(parse({"trace", "-p", "1"})->trace.session.ring_bytes);  // the tracer's default
  auto record = parse({"record", "-p", "1", "--db", "x.db", "--ring-bytes", "1073741824"});
  REQUIRE(record);
  CHECK(record->record.session.ring_bytes == 1u << 30);
  for (const char* bad : {"5000", "2048", "0", "2147483648", "-4096"}) {
    INFO("--ring-bytes " << bad);
    auto inv = parse({"trace", "-p", "1", "--ring-bytes", bad});
    REQUIRE_FALSE(inv);
    CHECK(inv.error().code == ExitCode::kUsage);
  }
  CHECK(parse({"trace", "-p", "1", "--ring-bytes", "5000"}).error().message.find("try 8192") != std::string::npos);
}

TEST_CASE("trace and record take --sample-bytes, with size suffixes") {
  auto trace = parse({"trace", "-p", "1", "--sample-bytes", "64KiB"});
  REQUIRE(trace);
  CHECK(trace->trace.session.sample_bytes == 65536);
  auto record = parse({"record", "-p", "1", "--db", "x.db", "--sample-bytes", "524288"});
  REQUIRE(record);
  CHECK(record->record.session.sample_bytes == 524288);
  auto exact = parse({"trace", "-p", "1"});
  REQUIRE(exact);
  CHECK_FALSE(exact->trace.session.sample_bytes.has_value());
}

TEST_CASE("usage errors exit 2 and say what to do") {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"trace"},
           {"trace", "-p", "1", "--", "ls"},
           {"trace", "-p", "x"},
           {"trace", "-p", "0"},
           {"trace", "-p", "1", "--interval", "0"},
           {"trace", "-p", "1", "--mode", "fast"},
           {"trace", "--all", "-p", "1"},
           {"trace", "--cgroup", "/a", "-p", "1"},
           {"trace", "--cgroup", "/a", "--all"},
           {"trace", "-p", "1", "--sample-bytes", "0"},
           {"trace", "-p", "1", "--sample-bytes", "lots"},
           {"frobnicate"},
           {}}) {
    INFO("args: " << args.size() << (args.empty() ? "" : " " + args[0]));
    auto inv = parse(args);
    REQUIRE_FALSE(inv);
    CHECK(inv.error().code == ExitCode::kUsage);
    CHECK_FALSE(inv.error().message.empty());
  }
}

TEST_CASE("trace --all means growth mode; --mode growth works on named targets too") {
  auto all = parse({"trace", "--all"});
  REQUIRE(all);
  CHECK(all->trace.session.all);
  CHECK(all->trace.session.growth);
  CHECK(std::string(cli::mode_name(all->trace.session)) == "growth");
  auto named = parse({"record", "-p", "7", "--mode", "growth", "--db", "x.db"});
  REQUIRE(named);
  CHECK_FALSE(named->record.session.all);
  CHECK(named->record.session.growth);
  auto cgroup = parse({"trace", "--cgroup", "/system.slice/app.service"});
  REQUIRE(cgroup);
  CHECK(cgroup->trace.session.cgroup == std::optional<std::string>("/system.slice/app.service"));
  CHECK_FALSE(cgroup->trace.session.growth);  // named processes: exact unless told
  auto exact = parse({"trace", "-p", "7"});
  REQUIRE(exact);
  CHECK_FALSE(exact->trace.session.growth);
  CHECK(std::string(cli::mode_name(exact->trace.session)) == "exact");
}

TEST_CASE("the help option teaches, and exits 0") {
  auto top = parse({"--help"});
  REQUIRE(top);
  CHECK(top->kind == Invocation::Kind::kInfo);
  CHECK(top->info.find("trace") != std::string::npos);
  auto trace = parse({"trace", "--help"});
  REQUIRE(trace);
  CHECK(trace->info.find("--min-age") != std::string::npos);
  CHECK(trace->info.find("Examples") != std::string::npos);
}

TEST_CASE("a kernel without BTF is refused with exit 3 and the config option to enable") {
  auto missing = attach::check_kernel("/nonexistent/btf/vmlinux");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ExitCode::kPrivilege);
  CHECK(missing.error().message.find("CONFIG_DEBUG_INFO_BTF") != std::string::npos);
}

TEST_CASE("record: targets like trace, a database, every stack each second by default") {
  auto inv = parse({"record", "-p", "42", "--db", "app.db", "--metrics", ":9464", "--retention", "2h"});
  REQUIRE(inv);
  CHECK(inv->kind == Invocation::Kind::kRecord);
  CHECK(inv->record.session.pids == std::vector<uint32_t>{42});
  CHECK(inv->record.db == "app.db");
  CHECK(inv->record.session.interval_s == 1.0);
  CHECK(inv->record.session.top == 0);
  CHECK(inv->record.metrics == ":9464");
  CHECK(inv->record.retention == "2h");
  auto no_db = parse({"record", "-p", "42"});
  REQUIRE_FALSE(no_db);
  CHECK(no_db.error().code == ExitCode::kUsage);
  CHECK_FALSE(parse({"record", "--db", "x.db"}));  // no target
}

TEST_CASE("report: formats, a moment or a range") {
  auto inv = parse({"report", "--db", "app.db", "--format", "pprof", "--pid", "7", "-o", "heap.pb.gz"});
  REQUIRE(inv);
  CHECK(inv->kind == Invocation::Kind::kReport);
  CHECK(inv->report.format == "pprof");
  CHECK(inv->report.pid == 7u);
  CHECK(inv->report.output == "heap.pb.gz");
  CHECK(parse({"report", "--db", "a.db", "--from", "-10m", "--to", "-1m"}));
  CHECK_FALSE(parse({"report", "--db", "a.db", "--format", "svg"}));
  CHECK_FALSE(parse({"report", "--db", "a.db", "--at", "-1m", "--from", "-5m"}));
}

TEST_CASE("times: Unix seconds, local date-time, relative") {
  const uint64_t now = 1'800'000'000'000'000'000;
  CHECK(cli::parse_time("1764150000", now) == 1'764'150'000'000'000'000u);
  CHECK(cli::parse_time("-5m", now) == now - 300'000'000'000u);
  CHECK(cli::parse_time("-90s", now) == now - 90'000'000'000u);
  CHECK(cli::parse_time("-2h", now) == now - 7'200'000'000'000u);
  CHECK(cli::parse_time("-30", now) == now - 30'000'000'000u);
  auto local = cli::parse_time("2026-11-26T10:00:00", now);
  REQUIRE(local);
  CHECK(*local == *cli::parse_time("2026-11-26 10:00:00", now));
  for (const char* bad : {"", "-5x", "-5mm", "yesterday", "2026-13-45T99:00:00", "12abc"}) {
    INFO(bad);
    auto t = cli::parse_time(bad, now);
    REQUIRE_FALSE(t);
    CHECK(t.error().code == ExitCode::kUsage);
  }
}

TEST_CASE("explain reads episodes by number or pid; record watches OOM kills") {
  auto inv = parse({"explain", "--db", "app.db", "--episode", "2", "--json"});
  REQUIRE(inv);
  CHECK(inv->kind == Invocation::Kind::kExplain);
  CHECK(inv->explain.db == "app.db");
  CHECK(inv->explain.episode == 2u);
  CHECK(inv->explain.json);
  auto both = parse({"explain", "--db", "app.db", "--episode", "2", "--pid", "7"});
  REQUIRE_FALSE(both);
  CHECK(both.error().code == ExitCode::kUsage);
  CHECK_FALSE(parse({"explain"}));  // --db is required
  auto rec = parse({"record", "--db", "x.db", "-p", "1"});
  REQUIRE(rec);
  CHECK(rec->record.session.watch_oom);
  auto trace = parse({"trace", "-p", "1"});
  REQUIRE(trace);
  CHECK_FALSE(trace->trace.session.watch_oom);
  auto oom = parse({"oom", "--db", "host.db"});
  REQUIRE(oom);
  CHECK(oom->oom.db == "host.db");
}
