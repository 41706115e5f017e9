#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>

#include "report/report.hpp"
#include "snapshot_fixture.hpp"

using namespace memsight;

namespace {

// Knows a few addresses; remembers which ones it was asked about.
struct FakeSymbols final : core::SymbolSource {
  std::vector<std::pair<uint64_t, core::AddressKind>> asked;
  void note_stack(uint32_t, std::span<const uint64_t>) override {}
  void forget(uint32_t) override {}
  std::vector<core::Frame> describe(uint32_t, uint64_t address, core::AddressKind kind) override {
    asked.emplace_back(address, kind);
    core::Frame f;
    f.address = address;
    if (address == 0x1000) {
      f.function = "malloc";
      f.module = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    } else if (address == 0x2000) {
      core::Frame inlined;
      inlined.function = "helper";
      inlined.file = "/src/app/helper.h";
      inlined.line = 7;
      inlined.inlined = true;
      inlined.address = address;
      f.function = "leak_block";
      f.file = "/src/app/leak.c";
      f.line = 42;
      return {inlined, f};
    }
    return {f};
  }
};

core::Snapshot sample() {
  core::Snapshot snap = test::app_snapshot();
  snap.lost.unmatched_frees = 3;
  snap.stacks[0].oldest_age_s = 1.5;
  snap.stacks[0].growth_bytes_per_s = 100;
  return snap;
}

}  // namespace

TEST_CASE("JSON snapshot follows memsight.snapshot/1") {
  FakeSymbols symbols;
  auto snap = sample();
  report::resolve_frames(snap, symbols);
  const auto line = report::render_json(snap, {5.0, true, "exact"});
  CHECK(line.find('\n') == std::string::npos);
  const auto doc = nlohmann::json::parse(line);
  CHECK(doc["schema"] == "memsight.snapshot/1");
  CHECK(doc["time_unix_ns"] == 1700000000000000000);
  CHECK(doc["final"] == true);
  CHECK(doc["mode"] == "exact");
  // The contract's three keys, and refused_blocks (an addition: allocations past --max-blocks).
  CHECK(doc["lost"] ==
        nlohmann::json{{"events", 0}, {"unmatched_frees", 3}, {"truncated_stacks", 0}, {"refused_blocks", 0}});
  CHECK(doc["sample_bytes"].is_null());  // an addition: exact counts
  CHECK(doc["processes"][0]["comm"] == "app");
  CHECK(doc["processes"][0]["rss_anon_bytes"].is_null());  // unknown: null, never invented
  const auto& stack = doc["stacks"][0];
  CHECK(stack["outstanding_bytes"] == 1536);
  CHECK(stack["oldest_age_s"] == 1.5);
  CHECK(stack["verdict"] == "undecided");
  CHECK(stack["verdict_evidence"]["samples"] == 0);
  const auto& frames = stack["frames"];
  REQUIRE(frames.size() == 4);  // the inlined frame expands the caller's address
  CHECK(frames[0]["function"] == "malloc");
  CHECK(frames[0]["file"].is_null());
  CHECK(frames[0]["address"] == "0x1000");
  CHECK(frames[1]["function"] == "helper");
  CHECK(frames[1]["inlined"] == true);
  CHECK(frames[2]["function"] == "leak_block");
  CHECK(frames[2]["line"] == 42);
  CHECK(frames[2]["address"] == "0x2000");  // shown as the return address it is
  CHECK(frames[3]["function"].is_null());
  // frames[0] is looked up as it is; return addresses by their call instruction.
  using K = core::AddressKind;
  CHECK(symbols.asked == std::vector<std::pair<uint64_t, K>>{{0x1000, K::kExact}, {0x2000, K::kReturn},
                                                              {0x3000, K::kReturn}});
}

TEST_CASE("a sampled snapshot says its counts are estimates, in JSON and text") {
  auto snap = sample();
  CHECK(report::render_text(snap, {5.0, false, "exact"}).find("estimated") == std::string::npos);
  snap.sample_bytes = 65536;
  CHECK(nlohmann::json::parse(report::render_json(snap, {5.0, false, "exact"}))["sample_bytes"] == 65536);
  const auto text = report::render_text(snap, {5.0, false, "exact"});
  CHECK(text.find("one sample point per 64.0 KiB") != std::string::npos);
  CHECK(text.find("estimated") != std::string::npos);
}

TEST_CASE("text report leads with losses and shows each stack as function (file:line)") {
  FakeSymbols symbols;
  auto snap = sample();
  report::resolve_frames(snap, symbols);
  const auto text = report::render_text(snap, {5.0, false, "exact"});
  CHECK(text.find("3 unmatched frees") != std::string::npos);
  CHECK(text.find("1.50 KiB in 2 blocks") != std::string::npos);
  CHECK(text.find("malloc (libc.so.6)") != std::string::npos);
  CHECK(text.find("helper (helper.h:7) [inlined]") != std::string::npos);
  CHECK(text.find("leak_block (leak.c:42)") != std::string::npos);
  CHECK(text.find("0x3000") != std::string::npos);
  CHECK(text.find("final") == std::string::npos);
  CHECK(text.find("--max-blocks") == std::string::npos);  // said only past the cap
  snap.lost.refused_blocks = 12345;
  CHECK(report::render_text(snap, {5.0, false, "exact"}).find("12,345 allocations untracked at the --max-blocks cap") !=
        std::string::npos);
}

TEST_CASE("human_bytes") {
  CHECK(report::human_bytes(0) == "0 B");
  CHECK(report::human_bytes(1023) == "1023 B");
  CHECK(report::human_bytes(1024) == "1.00 KiB");
  CHECK(report::human_bytes(1536 * 1024) == "1.50 MiB");
  CHECK(report::human_bytes(200.0 * 1024 * 1024) == "200 MiB");
  CHECK(report::human_bytes(-2048) == "-2.00 KiB");
}
