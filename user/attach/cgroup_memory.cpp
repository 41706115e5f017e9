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

// v2 counts memory only where the controller is enabled: memory.current says so.
std::optional<core::CgroupMemory> read_v2(const std::string& mount, const std::string& path) {
  const std::string dir = mount + path;
  auto current = read_bytes(dir + "/memory.current");
  if (!current) return std::nullopt;
  core::CgroupMemory m;
  m.path = path;
  m.usage_bytes = current;
  m.limit_bytes = read_bytes(dir + "/memory.max");
  core::parse_memory_stat(read_file(dir + "/memory.stat").value_or(""), true, m);
  return m;
}

std::optional<core::CgroupMemory> read_v1(const std::string& mount, const std::string& path) {
  const std::string dir = mount + path;
  core::CgroupMemory m;
  m.usage_bytes = read_bytes(dir + "/memory.usage_in_bytes");
  if (!m.usage_bytes) return std::nullopt;
  m.path = path;
  m.limit_bytes = read_bytes(dir + "/memory.limit_in_bytes");
  core::parse_memory_stat(read_file(dir + "/memory.stat").value_or(""), false, m);
  m.kernel_bytes = read_bytes(dir + "/memory.kmem.usage_in_bytes");
  m.sock_bytes = read_bytes(dir + "/memory.kmem.tcp.usage_in_bytes");
  return m;
}

}  // namespace

std::optional<core::CgroupMemory> read_cgroup_memory(uint32_t pid) {
  auto text = read_file("/proc/" + std::to_string(pid) + "/cgroup");
  if (!text) return std::nullopt;
  const auto places = core::parse_proc_cgroup(*text);
  if (places.v2 && mounts().v2)
    if (auto m = read_v2(*mounts().v2, *places.v2)) return m;
  if (places.v1_memory && mounts().v1_memory) return read_v1(*mounts().v1_memory, *places.v1_memory);
  return std::nullopt;
}

std::optional<MemoryHierarchy> memory_hierarchy() {
  if (mounts().v1_memory) return MemoryHierarchy{*mounts().v1_memory, false};
  if (mounts().v2) return MemoryHierarchy{*mounts().v2, true};
  return std::nullopt;
}

std::optional<core::CgroupMemory> read_cgroup_memory(const MemoryHierarchy& where, const std::string& path) {
  return where.v2 ? read_v2(where.mount, path) : read_v1(where.mount, path);
}

}  // namespace memsight::attach
