#include "cgroup_memory.hpp"

#include "attach/process_info.hpp"
#include "core/cgroup_text.hpp"

namespace memsight::attach {
namespace {

// Where the hierarchies are mounted: read once (mounts of cgroupfs don't move under a running tool).
const core::CgroupPlaces& mounts() {
  static const core::CgroupPlaces places =
      core::parse_cgroup_mounts(read_file("/proc/self/mountinfo").value_or(""));
  return places;
}

// A byte count file; empty when missing, unreadable, or "max"/unlimited.
std::optional<uint64_t> read_bytes(const std::string& path) { return core::parse_limit(read_file(path).value_or("")); }

}  // namespace

std::optional<core::CgroupMemory> read_cgroup_memory(uint32_t pid) {
  auto text = read_file("/proc/" + std::to_string(pid) + "/cgroup");
  if (!text) return std::nullopt;
  const auto places = core::parse_proc_cgroup(*text);
  core::CgroupMemory m;
  // v2 counts memory only where the controller is enabled: memory.current says so.
  if (places.v2 && mounts().v2) {
    const std::string dir = *mounts().v2 + *places.v2;
    if (auto current = read_bytes(dir + "/memory.current")) {
      m.path = *places.v2;
      m.usage_bytes = current;
      m.limit_bytes = read_bytes(dir + "/memory.max");
      core::parse_memory_stat(read_file(dir + "/memory.stat").value_or(""), true, m);
      return m;
    }
  }
  if (places.v1_memory && mounts().v1_memory) {
    const std::string dir = *mounts().v1_memory + *places.v1_memory;
    m.usage_bytes = read_bytes(dir + "/memory.usage_in_bytes");
    if (!m.usage_bytes) return std::nullopt;
    m.path = *places.v1_memory;
    m.limit_bytes = read_bytes(dir + "/memory.limit_in_bytes");
    core::parse_memory_stat(read_file(dir + "/memory.stat").value_or(""), false, m);
    m.kernel_bytes = read_bytes(dir + "/memory.kmem.usage_in_bytes");
    m.sock_bytes = read_bytes(dir + "/memory.kmem.tcp.usage_in_bytes");
    return m;
  }
  return std::nullopt;
}

}  // namespace memsight::attach
