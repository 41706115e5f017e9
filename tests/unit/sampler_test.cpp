#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "core/sampler.hpp"

using namespace memsight::core;

TEST_CASE("sampler: probability of taking a block of s bytes is 1 - exp(-s/N), 1 from N up", "[sampler]") {
  constexpr uint64_t kN = 65536;
  CHECK(sample_probability(0, kN) == 0.0);
  CHECK(sample_probability(kN / 2, kN) == Approx(1 - std::exp(-0.5)));
  CHECK(sample_probability(16, kN) == Approx(16.0 / kN).epsilon(1e-3));
  CHECK(sample_probability(kN, kN) == 1.0);
  CHECK(sample_probability(10 * kN, kN) == 1.0);
}

TEST_CASE("sampler: a taken block stands for 1/p blocks and s/p bytes", "[sampler]") {
  constexpr uint64_t kN = 65536;
  CHECK(sample_weight(0x1000, kN, kN).bytes == kN);  // always taken: exact
  CHECK(sample_weight(0x1000, kN, kN).allocs == 1);
  const uint64_t s = 1000;
  const double p = sample_probability(s, kN);
  CHECK(sample_weight(0x1000, s, kN).bytes == uint64_t(std::llround(s / p)));
  // Counts round up or down by address; over many addresses they average 1/p.
  double sum = 0;
  for (uint64_t a = 0; a < 100'000; ++a) {
    const uint64_t allocs = sample_weight(0x5555'0000'0000 + 16 * a, s, kN).allocs;
    REQUIRE((allocs == uint64_t(std::floor(1 / p)) || allocs == uint64_t(std::ceil(1 / p))));
    sum += double(allocs);
  }
  CHECK(sum / 100'000 == Approx(1 / p).epsilon(2e-3));
  // The same block weighs the same at its free as at its birth.
  CHECK(sample_weight(0x7777, 48, kN).allocs == sample_weight(0x7777, 48, kN).allocs);
}

TEST_CASE("sampler: the gap table holds exponential quantiles", "[sampler]") {
  constexpr uint64_t kN = 1 << 20;
  const auto q = gap_quantiles(kN);
  REQUIRE(q.size() == MS_GAP_STEPS);
  CHECK(q[0] == 0);
  CHECK(double(q[MS_GAP_STEPS / 2]) == Approx(kN * std::log(2.0)).epsilon(1e-6));
  CHECK(double(q[MS_GAP_STEPS - 1]) == Approx(kN * std::log(double(MS_GAP_STEPS))).epsilon(1e-6));
  for (size_t i = 1; i < q.size(); ++i) REQUIRE(q[i] > q[i - 1]);
}

TEST_CASE("sampler: blocks of each size are taken at the rate p(s)", "[sampler]") {
  constexpr uint64_t kN = 32768;
  const uint64_t size = GENERATE(64, 4096, 20000);
  ByteSampler sampler(kN, 11);
  constexpr int kCalls = 200'000;
  int taken = 0;
  for (int i = 0; i < kCalls; ++i) taken += sampler.take(size);
  const double p = sample_probability(size, kN);
  // Binomial: within 5 standard deviations (a false alarm once in ~3 million runs; the seed is fixed).
  CHECK(std::abs(taken - kCalls * p) <= 5 * std::sqrt(kCalls * p * (1 - p)));
}

TEST_CASE("sampler: the estimate is unbiased and its variance is the theoretical one", "[sampler]") {
  // A known mix of sizes, some at or above N (always taken), replayed in many runs with independent
  // samplers; each run estimates the total bytes and allocations.
  constexpr uint64_t kN = 32768;
  const std::vector<uint64_t> kSizes = {16, 24, 64, 200, 1000, 4096, 12000, 30000, 32768, 100000};
  constexpr int kPerSize = 500;
  constexpr int kRuns = 400;
  double truth = 0, variance = 0;
  for (uint64_t s : kSizes) {
    truth += double(s) * kPerSize;
    variance += sample_variance(s, kN) * kPerSize;
  }
  std::vector<double> bytes(kRuns), allocs(kRuns);
  for (int run = 0; run < kRuns; ++run) {
    ByteSampler sampler(kN, 1000 + run);
    uint64_t address = 0x5555'0000'0000;
    for (int i = 0; i < kPerSize; ++i)
      for (uint64_t s : kSizes) {
        address += 16 + s;
        if (!sampler.take(s)) continue;
        const SampleWeight w = sample_weight(address, s, kN);
        bytes[run] += double(w.bytes);
        allocs[run] += double(w.allocs);
      }
  }
  double mean = 0, mean_allocs = 0;
  for (int run = 0; run < kRuns; ++run) {
    mean += bytes[run] / kRuns;
    mean_allocs += allocs[run] / kRuns;
  }
  double spread = 0;
  for (double b : bytes) spread += (b - mean) * (b - mean) / (kRuns - 1);
  // The mean of kRuns estimates: within 4 of its standard errors of the truth.
  CHECK(std::abs(mean - truth) <= 4 * std::sqrt(variance / kRuns));
  CHECK(mean_allocs == Approx(double(kSizes.size() * kPerSize)).epsilon(0.05));
  // The sample variance of near-normal estimates has a relative standard error of sqrt(2 / (kRuns - 1)).
  INFO("empirical variance " << spread << ", theoretical " << variance);
  CHECK(std::abs(spread / variance - 1) <= 4 * std::sqrt(2.0 / (kRuns - 1)));
}
