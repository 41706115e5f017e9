// A process's memory cgroup and its accounting, read from cgroupfs (v1 or v2).
#pragma once

#include <cstdint>
#include <optional>

#include "core/snapshot.hpp"

namespace memsight::attach {

// Empty when the process is gone or its cgroup can't be read. v2 is preferred when both hold memory.
std::optional<core::CgroupMemory> read_cgroup_memory(uint32_t pid);

}  // namespace memsight::attach
