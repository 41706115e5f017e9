#include "sampler.hpp"

#include <cmath>

namespace memsight::core {

double sample_probability(uint64_t size, uint64_t mean_gap) {
  if (size >= mean_gap) return 1.0;
  // -expm1(-x) = 1 - exp(-x), exact for the tiny x of small blocks under a large gap.
  return -std::expm1(-static_cast<double>(size) / static_cast<double>(mean_gap));
}

namespace {

// A fraction in [0, 1) that depends only on the block's address and size: which way its count rounds.
double dither(uint64_t address, uint64_t size) {
  uint64_t x = address ^ (size * 0x9e3779b97f4a7c15ull);
  x = (x ^ (x >> 31)) * 0x7fb5d329728ea185ull;
  x = (x ^ (x >> 27)) * 0x81dadef4bc2dd44dull;
  x ^= x >> 33;
  return static_cast<double>(x >> 11) * 0x1.0p-53;
}

}  // namespace

SampleWeight sample_weight(uint64_t address, uint64_t size, uint64_t mean_gap) {
  const double p = sample_probability(size, mean_gap);
  if (p >= 1.0) return {size, 1};
  const double allocs = 1.0 / p;
  const double whole = std::floor(allocs);
  return {static_cast<uint64_t>(std::llround(static_cast<double>(size) / p)),
          static_cast<uint64_t>(whole) + (dither(address, size) < allocs - whole ? 1 : 0)};
}

double sample_variance(uint64_t size, uint64_t mean_gap) {
  const double p = sample_probability(size, mean_gap);
  const double s = static_cast<double>(size);
  return p >= 1.0 ? 0.0 : s * s * (1.0 - p) / p;
}

std::vector<uint64_t> gap_quantiles(uint64_t mean_gap) {
  std::vector<uint64_t> q(MS_GAP_STEPS);
  for (size_t i = 0; i < q.size(); ++i) {
    const double u = static_cast<double>(i) / MS_GAP_STEPS;
    q[i] = static_cast<uint64_t>(std::llround(-static_cast<double>(mean_gap) * std::log1p(-u)));
  }
  return q;
}

ByteSampler::ByteSampler(uint64_t mean_gap, uint32_t seed)
    : mean_gap_(mean_gap), quantiles_(gap_quantiles(mean_gap)), random_(seed), left_(draw_gap()) {}

// As draw_gap in bpf/sample.bpf.h: the step's quantile, plus the way to the next one in proportion to
// the low bits (linear in between: a mean ~1/12000 above mean_gap). The last step is the tail beyond
// ln(MS_GAP_STEPS) means, itself exponential with the same mean: its start plus another draw.
int64_t ByteSampler::draw_gap() {
  uint64_t gap = 0;
  for (int tail = 0; tail < 4; ++tail) {
    const uint32_t r = static_cast<uint32_t>(random_());
    const uint32_t step = r >> MS_GAP_FRACTION_BITS;
    const uint64_t within = r & ((1u << MS_GAP_FRACTION_BITS) - 1);
    if (step < MS_GAP_STEPS - 1)
      return static_cast<int64_t>(gap + quantiles_[step] +
                                  (((quantiles_[step + 1] - quantiles_[step]) * within) >> MS_GAP_FRACTION_BITS));
    gap += quantiles_[MS_GAP_STEPS - 1];
  }
  return static_cast<int64_t>(gap);
}

bool ByteSampler::take(uint64_t size) {
  if (size >= mean_gap_) return true;
  left_ -= static_cast<int64_t>(size);
  if (left_ > 0) return false;
  left_ = draw_gap();
  return true;
}

}  // namespace memsight::core
