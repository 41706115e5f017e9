#include "cgroup_target.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fmt/format.h>
#include <fstream>

#include "attach/cgroup_memory.hpp"

namespace memsight::attach {

Result<CgroupTarget> find_cgroup(const std::string& given) {
  const auto where = memory_hierarchy();
  if (!where)
    return fail(ExitCode::kPrivilege, "no memory cgroup controller is mounted (v1 `memory` or cgroup2): "
                                      "--cgroup needs one");
  const std::filesystem::path mount(where->mount);
  std::filesystem::path inside(given.empty() ? "/" : given);
  // A directory under the mount: the part after it. Anything else is a path inside the hierarchy.
  const auto [end, rest] = std::mismatch(mount.begin(), mount.end(), inside.begin(), inside.end());
  if (end == mount.end()) {
    std::filesystem::path relative("/");
    for (auto part = rest; part != inside.end(); ++part) relative /= *part;
    inside = relative;
  }
  CgroupTarget t;
  t.path = "/";
  for (const auto& part : inside.lexically_normal().relative_path()) {
    if (part.empty()) continue;
    if (part == "..")
      return fail(ExitCode::kUsage, fmt::format("--cgroup {}: a cgroup path can't climb with ..", given));
    t.path += (t.path.size() > 1 ? "/" : "") + part.string();
    ++t.level;
  }
  t.dir = where->mount + (t.path == "/" ? "" : t.path);
  struct stat st {};
  if (stat(t.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return fail(ExitCode::kTargetMissing,
                fmt::format("no memory cgroup {} ({} does not exist); the paths in /proc/PID/cgroup, or the "
                            "directories under {}, name them",
                            t.path, t.dir, where->mount));
  t.id = st.st_ino;
  return t;
}

std::vector<uint32_t> cgroup_pids(const CgroupTarget& target) {
  std::vector<uint32_t> pids;
  const auto read_procs = [&](const std::filesystem::path& dir) {
    std::ifstream procs(dir / "cgroup.procs");
    for (uint32_t pid; procs >> pid;) pids.push_back(pid);
  };
  read_procs(target.dir);
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(target.dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec)) read_procs(it->path());
  return pids;
}

}  // namespace memsight::attach
