// Sampling by bytes (--sample-bytes N), the math both sides share.
//
// Sample points fall on the bytes a thread allocates as a Poisson process with one point per N bytes on
// average: the BPF side keeps, per thread, the bytes left until the next point (an exponential draw of
// mean N) and takes a call whose bytes reach it. Because the exponential forgets what it has waited, a
// block of s bytes is taken with probability p(s) = 1 - exp(-s/N), independently of every other block;
// a block of at least N bytes is always taken (p = 1). Each taken block stands for 1/p(s) blocks and
// s/p(s) bytes (Horvitz-Thompson), so the totals are unbiased estimates, with variance
// sum over blocks of s^2 (1 - p(s)) / p(s) for bytes.
//
// The weight is computed from the block's size and N alone, at its birth and again at its free: no
// per-block state, and a free subtracts exactly what the birth added.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "memsight/abi.h"

namespace memsight::core {

// p(size): the chance a block of `size` bytes is taken when the mean gap is `mean_gap` bytes.
double sample_probability(uint64_t size, uint64_t mean_gap);

// What one taken block stands for. Bytes: size / p rounded to the nearest byte (an error below half a
// byte on a weight of at least `size`). Allocations: 1/p rounded up or down by the block's address (a
// fraction f rounds up for a fraction f of addresses), so counts are unbiased too while each block's
// weight stays a whole number, the same at birth and free.
struct SampleWeight {
  uint64_t bytes = 0;
  uint64_t allocs = 0;
};
SampleWeight sample_weight(uint64_t address, uint64_t size, uint64_t mean_gap);

// The variance of the byte estimate that a block of `size` bytes adds: size^2 (1 - p) / p.
double sample_variance(uint64_t size, uint64_t mean_gap);

// The exponential distribution of mean `mean_gap` bytes at the quantiles i / MS_GAP_STEPS, i = 0 ..
// MS_GAP_STEPS - 1: -mean_gap * ln(1 - i / MS_GAP_STEPS), bytes. The BPF side draws a gap from it (see
// draw_gap); user space fills it in before load. Needs mean_gap <= kMaxSampleBytes.
std::vector<uint64_t> gap_quantiles(uint64_t mean_gap);

// Largest --sample-bytes: the BPF draw multiplies a quantile step (< mean_gap) by 2^MS_GAP_FRACTION_BITS
// in 64 bits.
inline constexpr uint64_t kMaxSampleBytes = uint64_t{1} << 40;

// One thread's sampler, step for step as the BPF programs run it (bpf/sample.bpf.h), with a seeded
// generator in place of bpf_get_prandom_u32: for tests of the estimator and of the draw itself.
class ByteSampler {
 public:
  ByteSampler(uint64_t mean_gap, uint32_t seed);
  // Whether a call of `size` bytes is taken.
  bool take(uint64_t size);

 private:
  int64_t draw_gap();

  uint64_t mean_gap_;
  std::vector<uint64_t> quantiles_;
  std::mt19937 random_;
  int64_t left_;  // bytes until the next sample point
};

}  // namespace memsight::core
