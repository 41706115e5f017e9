#include "percpu_counters.hpp"

#include <bpf/libbpf.h>

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

}  // namespace memsight::attach
