// A memory cgroup's accounting, read from cgroupfs (v1 or v2): a process's, or one named by its path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/snapshot.hpp"

namespace memsight::attach {

// Empty when the process is gone or its cgroup can't be read. v2 is preferred when both hold memory.
std::optional<core::CgroupMemory> read_cgroup_memory(uint32_t pid);

// The hierarchy that holds the memory controller: the v1 `memory` mount when there is one (the
// controller then can't be on v2), else the cgroup2 mount.
struct MemoryHierarchy {
  std::string mount;  // e.g. /sys/fs/cgroup/memory
  bool v2 = false;
};
std::optional<MemoryHierarchy> memory_hierarchy();

// The cgroup at `path` (relative to the hierarchy's mount, as /proc/PID/cgroup writes it); empty when
// it can't be read (removed, or no memory controller there).
std::optional<core::CgroupMemory> read_cgroup_memory(const MemoryHierarchy& where, const std::string& path);

}  // namespace memsight::attach
