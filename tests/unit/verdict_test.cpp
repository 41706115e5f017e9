#include <catch2/catch.hpp>

#include <functional>

#include "core/verdict.hpp"

using namespace memsight::core;

namespace {

constexpr uint64_t kSecond = 1'000'000'000;

// A synthetic history: `n` samples one second apart of bytes(i), and `epochs` equal epochs over the
// same window whose births and survivors come from born(e) and live(e).
StackHistory history(size_t n, const std::function<uint64_t(size_t)>& bytes, size_t epochs,
                     const std::function<uint64_t(size_t)>& born, const std::function<uint64_t(size_t)>& live,
                     uint64_t block = 100) {
  StackHistory h;
  for (size_t i = 0; i < n; ++i) h.samples.push_back(Sample{(i + 1) * kSecond, bytes(i)});
  for (size_t e = 0; e < epochs; ++e) {
    h.epochs.push_back(Epoch{born(e), live(e), born(e) / block});
    h.allocs += born(e) / block;
    h.allocated_bytes += born(e);
  }
  return h;
}

const auto kNone = [](size_t) -> uint64_t { return 0; };

}  // namespace

TEST_CASE("a steady leak is a leak, with its evidence") {
  // 60 s, +1000 B/s, nothing ever freed.
  auto h = history(60, [](size_t i) { return 1000 * i; }, 16, [](size_t) { return 3750; },
                   [](size_t) { return 3750; });
  const Verdict v = judge(h);
  CHECK(v.kind == VerdictKind::kLeak);
  CHECK(v.floor_slope_bytes_per_s == Approx(1000).epsilon(0.05));
  REQUIRE(v.survival);
  CHECK(*v.survival == Approx(1.0));
  CHECK(v.epochs_alive == Approx(1.0));
  CHECK(v.samples == 60);
  CHECK(std::string(verdict_name(v.kind)) == "leak");
}

TEST_CASE("a leak under sawtooth churn on the same stack is still a leak") {
  // +500 B/s kept, plus temporary buffers that pile up to 9 KB and are all freed every 10 s.
  auto h = history(60, [](size_t i) { return 500 * i + (i % 10) * 1000; }, 16,
                   [](size_t) { return 1875 + 5000; },  // kept + churned per epoch
                   [](size_t) { return 1875; });        // only the kept part lives
  CHECK(judge(h).kind == VerdictKind::kLeak);
}

TEST_CASE("a sawtooth alone is never a leak") {
  auto h = history(60, [](size_t i) { return (i % 10) * 5000; }, 16, [](size_t) { return 20000; },
                   [](size_t e) { return e == 15 ? 20000 : 0; });
  const Verdict v = judge(h);
  CHECK(v.kind != VerdictKind::kLeak);
  CHECK(v.kind == VerdictKind::kBounded);
}

TEST_CASE("a cache that plateaus is bounded") {
  // Fills to 20 KB in 20 s, then evicts its oldest entries: only recent epochs hold live bytes.
  auto h = history(60, [](size_t i) { return std::min<uint64_t>(i, 20) * 1000; }, 16, [](size_t) { return 3750; },
                   [](size_t e) { return e >= 11 ? 3750 : (e == 10 ? 1250 : 0); });
  const Verdict v = judge(h);
  CHECK(v.kind == VerdictKind::kBounded);
  REQUIRE(v.survival);
  CHECK(*v.survival < 0.1);
}

TEST_CASE("a backlog whose old items are freed while the rate rises is a backlog, not a leak") {
  // The queue grows because arrivals speed up; every item is eventually consumed (old epochs empty).
  auto h = history(60, [](size_t i) { return 200 * i + 10 * i * i; }, 16,
                   [](size_t e) { return 2000 + 1000 * e; }, [](size_t e) { return e >= 12 ? 2000 + 1000 * e : 0; });
  const Verdict v = judge(h);
  CHECK(v.kind == VerdictKind::kBacklog);
}

TEST_CASE("requests that grow with the load but are served as fast as before are not a backlog") {
  // One request at a time, held 0.4 s, its size rising with the load: births (pages, in growth mode)
  // rise with the bytes, the floor rises, old epochs are empty, but no item waits longer than before.
  auto live_request = [](double t_s) { return 1000 * (10 + t_s); };
  auto h = history(60, [&](size_t i) { return static_cast<uint64_t>(live_request(static_cast<double>(i))); }, 16,
                   [&](size_t e) { return static_cast<uint64_t>(live_request(3.75 * (e + 0.5)) * 3.75 / 0.4); },
                   [&](size_t e) { return e == 15 ? static_cast<uint64_t>(live_request(59)) : 0; });
  const Verdict v = judge(h);
  CHECK(v.kind != VerdictKind::kBacklog);
  CHECK(v.kind == VerdictKind::kBounded);
  VerdictRules births_only;  // without the wait, births and the floor alone call it a backlog
  births_only.backlog_wait_rise = 0;
  births_only.backlog_min_wait_s = 0;
  CHECK(judge(h, births_only).kind == VerdictKind::kBacklog);

  // Sampled means swing: the same requests seen live twice as often in the second half look like a
  // doubled wait, but 0.8 s is no queue falling behind.
  auto swung = history(60, [&](size_t i) { return static_cast<uint64_t>(live_request(static_cast<double>(i)) * (i >= 30 ? 2 : 1)); }, 16,
                       [&](size_t e) { return static_cast<uint64_t>(live_request(3.75 * (e + 0.5)) * 3.75 / 0.4); },
                       [&](size_t e) { return e == 15 ? static_cast<uint64_t>(live_request(59)) : 0; });
  CHECK(judge(swung).kind == VerdictKind::kBounded);
  VerdictRules any_wait;
  any_wait.backlog_min_wait_s = 0;
  CHECK(judge(swung, any_wait).kind == VerdictKind::kBacklog);
}

TEST_CASE("churn that frees everything is transient") {
  auto h = history(60, [](size_t i) { return i % 2 ? 1000 : 0; }, 16, [](size_t) { return 100000; }, kNone);
  CHECK(judge(h).kind == VerdictKind::kTransient);
}

TEST_CASE("data allocated at start and kept is startup") {
  auto h = history(60, [](size_t) { return 64000; }, 16, [](size_t e) { return e < 2 ? 32000 : 0; },
                   [](size_t e) { return e < 2 ? 32000 : 0; });
  CHECK(judge(h).kind == VerdictKind::kStartup);
}

TEST_CASE("too short a history is undecided, even if it grows") {
  auto short_h = history(20, [](size_t i) { return 1000 * i; }, 16, [](size_t) { return 5000; },
                         [](size_t) { return 5000; });
  const Verdict v = judge(short_h);
  CHECK(v.kind == VerdictKind::kUndecided);
  CHECK(v.why.find("samples") != std::string::npos);
  auto few = history(60, [](size_t i) { return 1000 * i; }, 16, [](size_t) { return 2000; },
                     [](size_t) { return 2000; }, 1000);  // 32 allocations in all
  CHECK(judge(few).kind == VerdictKind::kUndecided);
}

TEST_CASE("Theil-Sen ignores outliers a least-squares fit would follow") {
  std::vector<Sample> s;
  for (uint64_t i = 0; i < 50; ++i) s.push_back(Sample{i * kSecond, 100 * i});
  s[45].bytes = 1'000'000'000;  // one spike
  CHECK(theil_sen_slope(s) == Approx(100).epsilon(0.02));
  CHECK(theil_sen_slope({}) == 0);
  CHECK(theil_sen_slope({Sample{kSecond, 5}}) == 0);
}

TEST_CASE("a short steady leak judged with short-history rules is a leak, not a plateau") {
  // 7 s of big blocks, 16 MiB/s, none freed (an OOM after seconds): the last quarter is one sample,
  // whose slope alone would read as flat.
  auto h = history(7, [](size_t i) { return (16u << 20) * (i + 1); }, 8, [](size_t) { return 14u << 20; },
                   [](size_t) { return 14u << 20; }, 8u << 20);
  VerdictRules quick;
  quick.min_samples = 6;
  quick.min_allocs = 8;
  CHECK(judge(h, quick).kind == VerdictKind::kLeak);
  CHECK(judge(h).kind == VerdictKind::kUndecided);  // a trace still waits for 30 samples
}
