#include "scoped_cgroup.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

#include "attach/process_info.hpp"
#include "core/cgroup_text.hpp"

namespace memsight::attach {
namespace {

bool write_text(const std::string& file, const std::string& text) {
  std::ofstream out(file);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

// memsight's own cgroup in the hierarchy that holds the memory controller.
std::string own_path(bool v2) {
  const auto places = core::parse_proc_cgroup(read_file("/proc/self/cgroup").value_or(""));
  return (v2 ? places.v2 : places.v1_memory).value_or("/");
}

std::string parent_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
}

bool delegates_memory(const std::string& dir) {
  std::istringstream words(read_file(dir + "/cgroup.subtree_control").value_or(""));
  for (std::string w; words >> w;)
    if (w == "memory") return true;
  return false;
}

}  // namespace

Result<ScopedCgroup> ScopedCgroup::create(const std::string& name, uint64_t limit_bytes) {
  const auto where = memory_hierarchy();
  if (!where) return fail(ExitCode::kRuntime, "no memory cgroup controller is mounted (v1 `memory` or cgroup2)");
  std::string parent = own_path(where->v2);
  if (where->v2)  // the nearest ancestor that hands the memory controller to its children
    while (parent != "/" && !delegates_memory(where->mount + parent)) parent = parent_of(parent);
  const std::string path = (parent == "/" ? "" : parent) + "/" + name;
  const std::string dir = where->mount + path;
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return fail(ExitCode::kPrivilege,
                fmt::format("cannot create the memory cgroup {}: {}; run as root on a host whose cgroupfs is "
                            "writable (not inside a container without cgroup delegation)",
                            dir, std::strerror(errno)));
  ScopedCgroup made(dir, path, where->v2);
  const std::string limit = std::to_string(limit_bytes);
  const bool limited = where->v2 ? write_text(dir + "/memory.max", limit) && write_text(dir + "/memory.swap.max", "0")
                                 : write_text(dir + "/memory.limit_in_bytes", limit);
  if (!where->v2) write_text(dir + "/memory.memsw.limit_in_bytes", limit);  // absent without swap accounting
  if (!limited)
    return fail(ExitCode::kPrivilege, fmt::format("cannot set the memory limit of {}: {}", dir, std::strerror(errno)));
  return made;
}

ScopedCgroup::ScopedCgroup(ScopedCgroup&& other) noexcept
    : dir_(std::move(other.dir_)), path_(std::move(other.path_)), v2_(other.v2_) {
  other.dir_.clear();
}

ScopedCgroup::~ScopedCgroup() {
  if (dir_.empty()) return;
  // Whatever is left inside (a child the program forked) goes first: a cgroup with tasks can't be removed.
  for (int attempt = 0; attempt < 50; ++attempt) {
    std::istringstream pids(read_file(dir_ + "/cgroup.procs").value_or(""));
    bool any = false;
    for (pid_t pid; pids >> pid;) any = true, kill(pid, SIGKILL);
    if (!any && rmdir(dir_.c_str()) == 0) return;
    usleep(20'000);  // a killed task leaves its cgroup once it has exited
  }
  fmt::print(stderr, "memsight: could not remove the cgroup {}: remove it with rmdir\n", dir_);
}

}  // namespace memsight::attach
