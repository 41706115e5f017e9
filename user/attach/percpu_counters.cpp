#include "percpu_counters.hpp"

#include <bpf/libbpf.h>

#include "memsight/abi.h"

namespace memsight::attach {

std::vector<uint64_t> sum_percpu_counters(const bpf_map* map, uint32_t n) {
  const int cpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> values(cpus > 0 ? cpus : 1), sums(n);
  for (uint32_t key = 0; key < n; ++key) {
    if (bpf_map__lookup_elem(map, &key, sizeof(key), values.data(), values.size() * sizeof(uint64_t), 0) == 0)
      for (uint64_t v : values) sums[key] += v;
  }
  return sums;
}

BpfLosses tracing_losses(const bpf_map* counters) {
  const auto sums = sum_percpu_counters(counters, MS_CNT_COUNT);
  return BpfLosses{sums[MS_CNT_RINGBUF_FULL], sums[MS_CNT_INFLIGHT_FULL], sums[MS_CNT_STACK_TRUNCATED],
                   sums[MS_CNT_INFLIGHT_STALE], sums[MS_CNT_NESTED], sums[MS_CNT_STACK_FAILED],
                   sums[MS_CNT_SAMPLED_FULL], sums[MS_CNT_NO_SAMPLER], sums[MS_CNT_UNWIND_STOPPED],
                   sums[MS_CNT_UNWIND_FP]};
}

}  // namespace memsight::attach
