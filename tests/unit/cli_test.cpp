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
  CHECK(inv->trace.pids == std::vector<uint32_t>{12, 34, 56});
  CHECK(inv->trace.interval_s == 0.5);
  CHECK(inv->trace.top == 3);
  CHECK(inv->trace.json);
  CHECK_FALSE(inv->trace.duration_s);
}

TEST_CASE("trace -- COMMAND keeps the command's own options") {
  auto inv = parse({"trace", "--duration", "10", "--min-age", "2", "-o", "out.jsonl", "--", "./server", "--port",
                    "80", "-p", "9"});
  REQUIRE(inv);
  CHECK(inv->trace.command == std::vector<std::string>{"./server", "--port", "80", "-p", "9"});
  CHECK(inv->trace.pids.empty());
  CHECK(inv->trace.duration_s == 10.0);
  CHECK(inv->trace.min_age_s == 2.0);
  CHECK(inv->trace.output == "out.jsonl");
}

TEST_CASE("defaults follow the contract") {
  auto inv = parse({"trace", "-p", "1"});
  REQUIRE(inv);
  CHECK(inv->trace.interval_s == 5.0);
  CHECK(inv->trace.top == 10);
  CHECK(inv->trace.min_age_s == 0);
  CHECK_FALSE(inv->trace.json);
  CHECK_FALSE(inv->trace.output);
}

TEST_CASE("usage errors exit 2 and say what to do") {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"trace"},
           {"trace", "-p", "1", "--", "ls"},
           {"trace", "-p", "x"},
           {"trace", "-p", "0"},
           {"trace", "-p", "1", "--interval", "0"},
           {"trace", "-p", "1", "--mode", "fast"},
           {"trace", "--all"},
           {"trace", "-p", "1", "--mode", "growth"},
           {"trace", "-p", "1", "--sample-bytes", "4096"},
           {"frobnicate"},
           {}}) {
    INFO("args: " << args.size() << (args.empty() ? "" : " " + args[0]));
    auto inv = parse(args);
    REQUIRE_FALSE(inv);
    CHECK(inv.error().code == ExitCode::kUsage);
    CHECK_FALSE(inv.error().message.empty());
  }
}

TEST_CASE("--help teaches, and exits 0") {
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
