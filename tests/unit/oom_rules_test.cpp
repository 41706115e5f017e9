// The OOM rules of diagnosis.md on recorded histories: each scenario's history built as `record`
// would have sampled it (1 s intervals), then explained.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "core/oom_explain.hpp"
#include "memsight/abi.h"

using namespace memsight;

namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kLimit = 256 * kMiB;
constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint64_t kStart = 1'700'000'000 * kSecond;
constexpr uint32_t kVictim = 100;

// A kill at `seconds` after the start of recording, in a memcg limited to kLimit.
struct Story {
  core::OomFacts facts;
  core::OomHistory history;

  explicit Story(int seconds) {
    facts.episode = 1;
    facts.time_unix_ns = kStart + static_cast<uint64_t>(seconds) * kSecond;
    facts.victim.pid = kVictim;
    facts.victim.comm = "svc";
    facts.victim.trigger_pid = kVictim;
    facts.domain_kind = "memcg";
    facts.domain_cgroup = "/svc";
    facts.victim_cgroup = "/svc";
    core::CgroupMemory m;
    m.usage_bytes = kLimit;
    m.limit_bytes = kLimit;
    m.anon_bytes = kLimit - 8 * kMiB;
    m.file_bytes = 8 * kMiB;
    m.shmem_bytes = 0;
    m.kernel_bytes = 2 * kMiB;
    facts.domain_memory = m;
    history.recording_since_unix_ns = kStart;
  }

  int seconds() const { return static_cast<int>((facts.time_unix_ns - kStart) / kSecond); }

  // Domain usage and one process's anon RSS and heap, sampled each second before the kill.
  void usage(const std::function<double(int)>& share_of_limit) {
    for (int t = 0; t < seconds(); ++t) {
      core::CgroupPoint p{kStart + static_cast<uint64_t>(t) * kSecond, {}};
      p.memory.usage_bytes = static_cast<uint64_t>(share_of_limit(t) * kLimit);
      p.memory.limit_bytes = kLimit;
      p.memory.file_bytes = 4 * kMiB;
      history.domain.push_back(p);
    }
  }
  core::ProcessTrend& process(uint32_t pid, const std::function<double(int)>& rss, const std::function<double(int)>& heap) {
    core::ProcessTrend p;
    p.pid = pid;
    p.comm = pid == kVictim ? "svc" : "sibling";
    p.traced = true;
    for (int t = 0; t < seconds(); ++t) {
      const uint64_t at = kStart + static_cast<uint64_t>(t) * kSecond;
      p.rss_anon.push_back({at, static_cast<uint64_t>(rss(t) * kLimit)});
      p.heap.push_back({at, static_cast<uint64_t>(heap(t) * kLimit)});
    }
    if (pid == kVictim) facts.victim.anon_rss_bytes = p.rss_anon.back().bytes;
    history.processes.push_back(p);
    return history.processes.back();
  }
  core::StackEvidence& stack(uint32_t pid, uint64_t id, double share, core::VerdictKind verdict) {
    core::StackEvidence s;
    s.row.pid = pid;
    s.row.stack_id = id;
    s.row.outstanding_bytes = static_cast<uint64_t>(share * kLimit);
    s.row.outstanding_allocs = 1000;
    s.row.frames = {0x1000, 0x2000 + id, 0x3000};
    s.row.verdict.kind = verdict;
    s.row.verdict.floor_slope_bytes_per_s = verdict == core::VerdictKind::kLeak ? kMiB : 0;
    s.row.verdict.survival = 0.99;
    s.row.oldest_age_s = seconds();
    history.stacks.push_back(s);
    return history.stacks.back();
  }
  core::OomExplanation explain() const { return core::explain_kill(facts, &history); }
};

double ramp(int t, int seconds, double from, double to) { return from + (to - from) * t / seconds; }

}  // namespace

TEST_CASE("a steady leak to the limit is a leak naming its stack, not a burst") {
  Story s(60);
  s.usage([](int t) { return ramp(t, 60, 0.05, 0.98); });
  s.process(kVictim, [](int t) { return ramp(t, 60, 0.04, 0.95); }, [](int t) { return ramp(t, 60, 0.03, 0.9); });
  s.stack(kVictim, 7, 0.85, core::VerdictKind::kLeak).recent_bytes = 12 * kMiB;
  s.stack(kVictim, 9, 0.02, core::VerdictKind::kTransient);
  const auto why = s.explain();
  CHECK(why.verdict == "leak");
  CHECK(why.confidence == "high");
  REQUIRE_FALSE(why.stacks.empty());
  CHECK(why.stacks.front().role == "leak");
  CHECK(why.stacks.front().row.stack_id == 7);
  CHECK(why.summary.rfind("Verdict: MEMORY LEAK", 0) == 0);
  CHECK(why.explained_fraction > 0.9);
}

TEST_CASE("a leak under a sawtooth stays a leak: the sawtooth's big rises are not a burst") {
  Story s(60);
  s.usage([](int t) { return ramp(t, 60, 0.1, 0.7) + 0.3 * ((t % 10) / 10.0); });
  s.process(kVictim, [](int t) { return ramp(t, 60, 0.1, 0.7) + 0.3 * ((t % 10) / 10.0); },
            [](int t) { return ramp(t, 60, 0.1, 0.7) + 0.3 * ((t % 10) / 10.0); });
  s.stack(kVictim, 7, 0.6, core::VerdictKind::kLeak).recent_bytes = 10 * kMiB;
  s.stack(kVictim, 8, 0.3, core::VerdictKind::kTransient).recent_bytes = 60 * kMiB;
  CHECK(s.explain().verdict == "leak");
}

TEST_CASE("one huge allocation after a steady phase is burst/single_huge naming it") {
  Story s(30);
  s.usage([](int) { return 0.3; });
  s.process(kVictim, [](int) { return 0.29; }, [](int) { return 0.28; });
  s.history.processes.back().heap.push_back({s.facts.time_unix_ns, 2 * kLimit + kLimit / 4});
  auto& big = s.stack(kVictim, 5, 2.0, core::VerdictKind::kUndecided);
  big.recent_bytes = big.largest_recent_block = 2 * kLimit;
  s.stack(kVictim, 6, 0.25, core::VerdictKind::kStartup);
  const auto why = s.explain();
  CHECK(why.verdict == "burst");
  CHECK(why.subtype == "single_huge");
  REQUIRE_FALSE(why.stacks.empty());
  CHECK(why.stacks.front().row.stack_id == 5);
  CHECK(why.summary.find("one allocation of 512 MiB") != std::string::npos);
}

TEST_CASE("many small nodes in the last seconds are a burst without a subtype; deep recursion is recursion") {
  Story s(30);
  s.usage([](int) { return 0.25; });
  s.process(kVictim, [](int) { return 0.25; }, [](int) { return 0.24; });
  auto& nodes = s.stack(kVictim, 5, 0.75, core::VerdictKind::kUndecided);
  nodes.recent_bytes = static_cast<uint64_t>(0.75 * kLimit);
  nodes.largest_recent_block = 256;
  auto nodes_why = s.explain();
  CHECK(nodes_why.verdict == "burst");
  CHECK_FALSE(nodes_why.subtype);

  auto& frames = s.history.stacks.back().row.frames;
  frames = {0x1000};
  for (int i = 0; i < 60; ++i) frames.push_back(0x4242);  // descend() returning into itself
  s.history.stacks.back().largest_recent_block = 256 << 10;
  CHECK(s.explain().subtype == "recursion");
}

TEST_CASE("a flat victim killed while a sibling grows is `others`, naming the grower and its verdict") {
  Story s(40);
  s.usage([](int t) { return 0.55 + ramp(t, 40, 0.0, 0.44); });
  s.process(kVictim, [](int) { return 0.55; }, [](int) { return 0.54; });
  s.process(200, [](int t) { return ramp(t, 40, 0.0, 0.44); }, [](int t) { return ramp(t, 40, 0.0, 0.43); });
  s.stack(200, 3, 0.43, core::VerdictKind::kLeak);
  s.stack(kVictim, 4, 0.54, core::VerdictKind::kStartup);
  const auto why = s.explain();
  CHECK(why.verdict == "others");
  CHECK(why.grower_pid == 200u);
  CHECK(why.summary.find("pid 200") != std::string::npos);
  CHECK(why.summary.find("its own verdict: leak") != std::string::npos);
  REQUIRE_FALSE(why.stacks.empty());
  CHECK(why.stacks.front().role == "grower");
}

TEST_CASE("a steady working set near a tight limit is limit_too_small with a larger suggestion, never a leak") {
  Story s(60);
  s.usage([](int t) { return t < 3 ? 0.3 * t : 0.86 + 0.12 * std::abs(std::sin(t * 1.7)); });
  s.process(kVictim, [](int t) { return t < 3 ? 0.3 * t : 0.85; }, [](int t) { return t < 3 ? 0.3 * t : 0.84; });
  s.stack(kVictim, 1, 0.84, core::VerdictKind::kStartup);
  s.stack(kVictim, 2, 0.05, core::VerdictKind::kTransient).recent_bytes = 30 * kMiB;
  const auto why = s.explain();
  CHECK(why.verdict == "limit_too_small");
  REQUIRE(why.suggested_limit_bytes);
  CHECK(*why.suggested_limit_bytes > kLimit);
}

TEST_CASE("anon RSS growing far beyond the traced heap is non_heap/allocator_retention") {
  Story s(60);
  s.usage([](int t) { return ramp(t, 60, 0.1, 0.95); });
  s.process(kVictim, [](int t) { return ramp(t, 60, 0.1, 0.95); }, [](int) { return 0.1; });
  s.stack(kVictim, 1, 0.1, core::VerdictKind::kBounded);
  const auto why = s.explain();
  CHECK(why.verdict == "non_heap");
  CHECK(why.subtype == "allocator_retention");
}

TEST_CASE("a cache that plateaus is not a leak; with nothing else to say, the answer is insufficient_data") {
  Story s(60);
  s.usage([](int t) { return std::min(0.6, ramp(t, 20, 0.0, 0.6)); });
  s.process(kVictim, [](int t) { return std::min(0.6, ramp(t, 20, 0.0, 0.6)); },
            [](int t) { return std::min(0.6, ramp(t, 20, 0.0, 0.6)); });
  s.stack(kVictim, 1, 0.6, core::VerdictKind::kBounded);
  const auto why = s.explain();
  CHECK(why.verdict == "insufficient_data");
  CHECK(why.summary.find("recorded it for 60 s") != std::string::npos);
}

TEST_CASE("recording that began after most of the growth is never high confidence") {
  Story s(60);
  s.usage([](int t) { return ramp(t, 60, 0.7, 0.98); });
  s.process(kVictim, [](int t) { return ramp(t, 60, 0.7, 0.95); }, [](int t) { return ramp(t, 60, 0.0, 0.25); });
  s.stack(kVictim, 7, 0.25, core::VerdictKind::kLeak);
  const auto why = s.explain();
  CHECK(why.verdict == "leak");
  CHECK(why.confidence != "high");
  CHECK(why.summary.find("started after most of the growth") != std::string::npos);
}

TEST_CASE("a failed huge request is burst/single_huge; a small one after a leak is the leak") {
  Story s(60);
  s.facts.domain_kind = "unknown";
  s.facts.domain_memory.reset();
  core::FailureFacts fail;
  fail.fn = MS_FN_MALLOC;
  fail.size = 100ull << 30;
  core::LimitFacts limits;
  limits.rlimit_as = 400 * kMiB;
  limits.total_vm_bytes = 90 * kMiB;
  core::classify_refusal(limits, fail);
  CHECK(fail.refused_by == "RLIMIT_AS");
  s.facts.failure = fail;
  s.process(kVictim, [](int) { return 0.1; }, [](int) { return 0.1; });
  auto huge = s.explain();
  CHECK(huge.verdict == "burst");
  CHECK(huge.subtype == "single_huge");
  CHECK(huge.confidence == "high");
  CHECK(huge.summary.find("RLIMIT_AS (400 MiB) refused it") != std::string::npos);

  s.facts.failure->size = 64 << 10;
  s.stack(kVictim, 7, 1.2, core::VerdictKind::kLeak);
  CHECK(s.explain().verdict == "leak");
}

TEST_CASE("which limit refused a request") {
  core::FailureFacts f;
  f.size = 1 << 20;
  core::LimitFacts l;
  l.rlimit_data = 8 * kMiB;
  l.data_vm_bytes = 8 * kMiB;
  core::classify_refusal(l, f);
  CHECK(f.refused_by == "RLIMIT_DATA");
  core::LimitFacts strict;
  strict.overcommit_mode = 2;
  strict.commit_limit_bytes = 1024 * kMiB;
  strict.committed_bytes = 1024 * kMiB;
  core::classify_refusal(strict, f);
  CHECK(f.refused_by == "overcommit");
  core::LimitFacts heuristic;
  heuristic.overcommit_mode = 0;
  heuristic.ram_and_swap_bytes = 24ull << 30;
  f.size = 100ull << 30;
  core::classify_refusal(heuristic, f);
  CHECK(f.refused_by == "overcommit");
  f.size = 1ull << 47;
  core::classify_refusal(core::LimitFacts{}, f);
  CHECK(f.refused_by == "address space");
  f.size = 4096;
  core::classify_refusal(core::LimitFacts{}, f);
  CHECK(f.refused_by == "unknown");
}

TEST_CASE("a burst slowed down by tracing (8 s of small nodes after a flat phase) is still a burst") {
  Story s(48);
  s.usage([](int t) { return t < 40 ? 0.25 : 0.25 + 0.09 * (t - 40); });
  s.process(kVictim, [](int t) { return t < 40 ? 0.25 : 0.25 + 0.09 * (t - 40); },
            [](int t) { return t < 40 ? 0.24 : 0.24 + 0.09 * (t - 40); });
  auto& nodes = s.stack(kVictim, 5, 0.74, core::VerdictKind::kUndecided);
  nodes.recent_bytes = static_cast<uint64_t>(0.74 * kLimit);
  nodes.largest_recent_block = 256;
  const auto why = s.explain();
  CHECK(why.verdict == "burst");
  CHECK_FALSE(why.subtype);
}

TEST_CASE("a flat phase and then a climb to the limit is no working set near the limit") {
  Story s(60);
  // The climb is short: most pairs of samples are flat, so the Theil-Sen trend reads none.
  const auto climb = [](int t) { return t < 52 ? 0.25 : std::min(0.99, 0.25 + 0.2 * (t - 51)); };
  s.usage(climb);
  s.process(kVictim, climb, climb);
  CHECK(s.explain().verdict != "limit_too_small");
}
