// The cgroup text files (/proc/PID/cgroup, mountinfo, memory.stat, limits, OOM counters: all readable
// from inside a container, so attacker-shaped) through every parser of cgroup_text.hpp and
// parse_oom_counters. Each parser gets the whole input; none may fail on any text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/cgroup_text.hpp"
#include "core/oom_event.hpp"
#include "fuzz_input.hpp"

using namespace memsight;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)core::parse_proc_cgroup(text);
  (void)core::parse_cgroup_mounts(text);
  for (bool v2 : {false, true}) {
    core::CgroupMemory memory;
    core::parse_memory_stat(text, v2, memory);
  }
  (void)core::parse_limit(text);
  core::CgroupOomCounters counters;
  core::parse_oom_counters(text, counters);
  return 0;
}
