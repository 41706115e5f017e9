#include "oom_signals.hpp"

#include <algorithm>
#include <cmath>

namespace memsight::core {

std::optional<uint64_t> value_at(const std::vector<Sample>& series, uint64_t time_ns) {
  std::optional<uint64_t> v;
  for (const auto& s : series) {
    if (s.time_ns > time_ns) break;
    v = s.bytes;
  }
  return v;
}

uint64_t largest_rise(const std::vector<Sample>& series, uint64_t span_ns, uint64_t until_ns) {
  uint64_t best = 0;
  for (size_t j = 0; j < series.size() && series[j].time_ns <= until_ns; ++j) {
    // Walk back over the window ending at j: series are a few thousand samples, windows a few.
    for (size_t i = j; i-- > 0 && series[j].time_ns - series[i].time_ns <= span_ns;)
      if (series[j].bytes > series[i].bytes) best = std::max(best, series[j].bytes - series[i].bytes);
  }
  return best;
}

uint64_t quantile(std::vector<uint64_t> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(q * static_cast<double>(values.size()));
  const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return values[std::min(index, values.size() - 1)];
}

int64_t change(const std::vector<Sample>& series) {
  if (series.size() < 2) return 0;
  return static_cast<int64_t>(series.back().bytes) - static_cast<int64_t>(series.front().bytes);
}

NonHeapParts non_heap_parts(const CgroupMemory& m) {
  const uint64_t file = m.file_bytes.value_or(0), shmem = m.shmem_bytes.value_or(0);
  return NonHeapParts{shmem, m.kernel_bytes.value_or(0) + m.sock_bytes.value_or(0), file - std::min(file, shmem)};
}

const char* NonHeapParts::largest() const {
  if (shmem >= kernel && shmem >= page_cache) return "shmem";
  return kernel >= page_cache ? "kernel" : "page_cache";
}

}  // namespace memsight::core
