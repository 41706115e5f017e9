// The measurements the OOM rules rest on, over sampled series (oldest first): the value in force at a
// moment, the largest rise within a span, a quantile. Pure arithmetic, no policy.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "snapshot.hpp"
#include "verdict.hpp"

namespace memsight::core {

// The last sample at or before `time_ns`; empty when the series starts later.
std::optional<uint64_t> value_at(const std::vector<Sample>& series, uint64_t time_ns);

// The largest rise inside any window of `span_ns` ending at or before `until_ns`: max over samples j of
// bytes[j] - min(bytes[i]) for the samples i within span_ns before j. 0 for fewer than two samples.
uint64_t largest_rise(const std::vector<Sample>& series, uint64_t span_ns, uint64_t until_ns);

// The q-quantile (0..1, nearest rank) of the values; 0 for none.
uint64_t quantile(std::vector<uint64_t> values, double q);

// Last minus first; 0 for fewer than two samples. Signed: memory can shrink.
int64_t change(const std::vector<Sample>& series);

// A cgroup's memory that is not heap, by kind: shmem, kernel (slab, stacks, page tables, sockets),
// and page cache (v1's "cache" holds shmem too: only the rest counts).
struct NonHeapParts {
  uint64_t shmem = 0, kernel = 0, page_cache = 0;
  uint64_t total() const { return shmem + kernel + page_cache; }
  const char* largest() const;  // "shmem", "kernel" or "page_cache"
};
NonHeapParts non_heap_parts(const CgroupMemory& m);

}  // namespace memsight::core
