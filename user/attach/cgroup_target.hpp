// --cgroup PATH: a memory cgroup named as the target, and the processes in it and below it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace memsight::attach {

struct CgroupTarget {
  std::string path;   // in the memory hierarchy, as /proc/PID/cgroup writes it ("/a/b"; "/" the root)
  std::string dir;    // where it is mounted (/sys/fs/cgroup/memory/a/b)
  uint64_t id = 0;    // the directory's inode: the kernel's kernfs id for the cgroup
  uint32_t level = 0; // depth below the hierarchy's root
};

// `given` is a directory under the memory hierarchy's mount, or a path inside the hierarchy ("/a/b").
// Exit code 4 when no such cgroup exists, 3 when no memory controller is mounted.
Result<CgroupTarget> find_cgroup(const std::string& given);

// The processes in the cgroup and every cgroup below it, now.
std::vector<uint32_t> cgroup_pids(const CgroupTarget& target);

}  // namespace memsight::attach
