// A memory cgroup memsight makes for a program it runs (the demo), limited, and removed when done.
//
// Where: v1, under memsight's own memory cgroup; v2, under the nearest ancestor of memsight's own
// cgroup that delegates the memory controller to its children (the root does). Processes join by
// writing their pid into its cgroup.procs (the launched program does it itself, before it allocates).
#pragma once

#include <cstdint>
#include <string>

#include "attach/cgroup_memory.hpp"
#include "core/error.hpp"

namespace memsight::attach {

class ScopedCgroup {
 public:
  // Errors: kPrivilege when cgroupfs refuses (not root, read-only, delegated elsewhere), naming what
  // to do; kRuntime when there is no memory controller at all.
  static Result<ScopedCgroup> create(const std::string& name, uint64_t limit_bytes);
  ScopedCgroup(ScopedCgroup&& other) noexcept;
  ScopedCgroup& operator=(ScopedCgroup&&) = delete;
  ~ScopedCgroup();  // kills what is still inside, then removes it

  const std::string& dir() const { return dir_; }    // in cgroupfs: write pids to dir()/cgroup.procs
  const std::string& path() const { return path_; }  // as /proc/PID/cgroup and the kernel log name it
  bool v2() const { return v2_; }

 private:
  ScopedCgroup(std::string dir, std::string path, bool v2) : dir_(std::move(dir)), path_(std::move(path)), v2_(v2) {}
  std::string dir_, path_;
  bool v2_ = false;
};

}  // namespace memsight::attach
