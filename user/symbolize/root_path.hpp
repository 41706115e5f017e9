// Opening a traced process's file by the path it sees, inside its own root, so a hostile container
// cannot send memsight to a file of the host.
//
// The kernel resolves /proc/PID/root/PATH from the process's root directory, but a symlink met on the
// way that is absolute (lib -> /etc) starts again from *memsight's* root, and one with enough ".."
// climbs out: a container could make memsight read any host file as "its libc", or attach probes to
// it. openat2(2) with RESOLVE_IN_ROOT resolves every component, symlinks included, as if the process's
// root were "/" (".." stops there), and RESOLVE_NO_MAGICLINKS refuses /proc/*/fd- and /proc/*/root-style
// links, which lead wherever they point (a container's /proc/self would be memsight). Kernels before
// 5.6 have no openat2: there each component is opened on its own with O_NOFOLLOW, and a path with a
// symlink or ".." anywhere is refused instead of followed (/proc/PID/maps paths have neither).
//
// What this opens is an O_PATH descriptor: it names the file without opening it, so no device or FIFO
// is ever opened; open_for_reading() opens it once it is known to be a regular file.
//
// attach uses this too (the allocator a target maps): the one header attach takes from symbolize.
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace memsight::symbolize {

// A file descriptor that closes itself.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

enum class RootResolution {
  kOpenat2,       // openat2 RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: symlinks resolve inside the root
  kNoFollowWalk,  // no openat2 (kernel < 5.6, or a seccomp filter): symlinks and ".." are refused
};

// What this kernel allows, asked once.
RootResolution root_resolution();
// For the user, once: empty when openat2 is there, else what the fallback means.
std::string root_resolution_note();

// `path` (absolute, as the process sees it) under the directory `root_fd`, as an O_PATH descriptor.
tl::expected<UniqueFd, std::string> open_in_root(int root_fd, const std::string& path,
                                                 RootResolution how = root_resolution());
// The same with the root given by path, e.g. /proc/PID/root.
tl::expected<UniqueFd, std::string> open_in_root(const std::string& root_dir, const std::string& path,
                                                 RootResolution how = root_resolution());

// The regular file an O_PATH descriptor names, opened read-only (through /proc/self/fd); anything else
// is refused unopened. `what` names the file in errors.
tl::expected<UniqueFd, std::string> open_for_reading(const UniqueFd& path_fd, const std::string& what);

// "/proc/self/fd/N": the open file as a path, for interfaces that take one (the kernel's uprobe
// attach). It follows the descriptor, not a name, and is valid while the descriptor is open.
std::string fd_path(int fd);

}  // namespace memsight::symbolize
