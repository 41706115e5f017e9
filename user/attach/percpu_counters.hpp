// Per-CPU counter arrays (BPF_MAP_TYPE_PERCPU_ARRAY of u64): BPF bumps its CPU's slot without atomics;
// user space sums the slots.
#pragma once

#include <cstdint>
#include <vector>

#include "attach/event_source.hpp"

struct bpf_map;

namespace memsight::attach {

// counts[i] = the sum over CPUs of slot i, for i < n; a slot that can't be read counts 0.
std::vector<uint64_t> sum_percpu_counters(const bpf_map* map, uint32_t n);

// The loss counters (abi.h MS_CNT_*) of a tracing object's `counters` map.
BpfLosses tracing_losses(const bpf_map* counters);

}  // namespace memsight::attach
