// The two clocks memsight reads, in ns. CLOCK_MONOTONIC is the clock of bpf_ktime_get_ns, so record
// times and these compare directly; CLOCK_REALTIME is for what people and databases read.
#pragma once

#include <cstdint>
#include <ctime>

namespace memsight::attach {

inline uint64_t clock_ns(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000 + uint64_t(ts.tv_nsec);
}
inline uint64_t monotonic_ns() { return clock_ns(CLOCK_MONOTONIC); }
inline uint64_t realtime_ns() { return clock_ns(CLOCK_REALTIME); }

}  // namespace memsight::attach
