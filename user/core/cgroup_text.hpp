// The text files that describe memory cgroups, v1 and v2 (pure parsing; reading is attach's):
// /proc/PID/cgroup (where a process sits), /proc/self/mountinfo (where the hierarchies are mounted),
// memory.stat (the breakdown).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "snapshot.hpp"

namespace memsight::core {

struct CgroupPlaces {
  std::optional<std::string> v1_memory;  // path in the v1 memory hierarchy ("4:memory:/a/b")
  std::optional<std::string> v2;         // path in the unified hierarchy ("0::/a/b")
};

CgroupPlaces parse_proc_cgroup(std::string_view text);
// Where the v1 memory controller and the v2 hierarchy are mounted (mount points).
CgroupPlaces parse_cgroup_mounts(std::string_view mountinfo);

// Fills anon/file/shmem/kernel/sock from memory.stat. v1 uses its hierarchical total_* keys (they
// include child cgroups, as the limit does); v2's keys are hierarchical already.
void parse_memory_stat(std::string_view text, bool v2, CgroupMemory& into);

// A limit file's value: empty for "max" (v2) or the v1 "unlimited" sentinel (close to 2^63).
std::optional<uint64_t> parse_limit(std::string_view text);

// The container a cgroup path names, when it names one: the 64-hex-digit id that container runtimes
// put in the innermost component that has one ("/docker/<id>", "/system.slice/docker-<id>.scope",
// "cri-containerd-<id>.scope", "crio-<id>.scope", "libpod-<id>.scope", kubepods ".../<id>").
std::optional<std::string> container_id_of(std::string_view cgroup_path);

}  // namespace memsight::core
