#include "root_path.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

namespace memsight::symbolize {
namespace {

constexpr int kPathFlags = O_PATH | O_CLOEXEC;

long openat2_call(int dirfd, const char* path, uint64_t resolve) {
  open_how how{};
  how.flags = kPathFlags;
  how.resolve = resolve;
  return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

std::string failure(const std::string& path, int err) {
  if (err == ELOOP)  // what RESOLVE_NO_MAGICLINKS says (and a symlink loop)
    return fmt::format("{}: refused: it leads through a /proc magic link, or a symlink loop", path);
  return fmt::format("{}: {}", path, std::strerror(err));
}

// Kernels without openat2: one component at a time, never following a symlink, never climbing.
tl::expected<UniqueFd, std::string> walk_no_follow(int root_fd, const std::string& path) {
  UniqueFd dir(fcntl(root_fd, F_DUPFD_CLOEXEC, 0));
  if (dir.get() < 0) return tl::unexpected(failure(path, errno));
  std::string_view rest(path);
  while (!rest.empty()) {
    const size_t slash = rest.find('/');
    const std::string part(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") return tl::unexpected(fmt::format("{}: refused: '..' in a path (no openat2 here)", path));
    UniqueFd next(openat(dir.get(), part.c_str(), kPathFlags | O_NOFOLLOW));
    if (next.get() < 0) return tl::unexpected(failure(path, errno));
    struct stat st;
    if (fstat(next.get(), &st) != 0) return tl::unexpected(failure(path, errno));
    if (S_ISLNK(st.st_mode))  // O_PATH|O_NOFOLLOW opens the link itself
      return tl::unexpected(fmt::format("{}: refused: {} is a symlink (no openat2 here to keep it inside the root)",
                                        path, part));
    dir = std::move(next);
  }
  return dir;
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

RootResolution root_resolution() {
  static const RootResolution how = [] {
    const long fd = openat2_call(AT_FDCWD, "/", RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    if (fd >= 0) ::close(static_cast<int>(fd));
    // ENOSYS: before 5.6; EPERM: a seccomp filter that does not know it.
    return fd < 0 && (errno == ENOSYS || errno == EPERM) ? RootResolution::kNoFollowWalk : RootResolution::kOpenat2;
  }();
  return how;
}

std::string root_resolution_note() {
  if (root_resolution() == RootResolution::kOpenat2) return {};
  return "openat2(2) is not available (kernel before 5.6, or a seccomp filter): a target's files are opened "
         "only through paths without symlinks, so nothing outside its root is ever opened";
}

tl::expected<UniqueFd, std::string> open_in_root(int root_fd, const std::string& path, RootResolution how) {
  if (how == RootResolution::kNoFollowWalk) return walk_no_follow(root_fd, path);
  long fd = -1;
  for (int attempt = 0; attempt < 4; ++attempt) {  // EAGAIN: a rename raced a ".." (RESOLVE_IN_ROOT checks)
    fd = openat2_call(root_fd, path.c_str(), RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    if (fd >= 0 || errno != EAGAIN) break;
  }
  if (fd < 0) return tl::unexpected(failure(path, errno));
  return UniqueFd(static_cast<int>(fd));
}

tl::expected<UniqueFd, std::string> open_in_root(const std::string& root_dir, const std::string& path,
                                                 RootResolution how) {
  // The root itself is a magic link (/proc/PID/root): followed here, on purpose, once.
  UniqueFd root(::open(root_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (root.get() < 0) return tl::unexpected(failure(root_dir, errno));
  auto opened = open_in_root(root.get(), path, how);
  if (!opened) return tl::unexpected(fmt::format("in {}: {}", root_dir, opened.error()));
  return opened;
}

tl::expected<UniqueFd, std::string> open_for_reading(const UniqueFd& path_fd, const std::string& what) {
  struct stat st;
  if (fstat(path_fd.get(), &st) != 0) return tl::unexpected(failure(what, errno));
  if (!S_ISREG(st.st_mode)) return tl::unexpected(fmt::format("{}: not a regular file", what));
  UniqueFd fd(::open(fd_path(path_fd.get()).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) return tl::unexpected(failure(what, errno));
  return fd;
}

std::string fd_path(int fd) { return fmt::format("/proc/self/fd/{}", fd); }

}  // namespace memsight::symbolize
