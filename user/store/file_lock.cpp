#include "file_lock.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace memsight::store {
namespace {

std::string holder_of(int fd) {
  char buf[32] = {};
  const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.empty() ? std::string("unknown") : pid;
}

// The lock is ours only if the path still names the file we locked: a previous holder unlinks it on
// its way out, and a lock on an unlinked file protects nothing.
bool still_linked(int fd, const std::string& path) {
  struct stat held {
  }, named{};
  return ::fstat(fd, &held) == 0 && ::stat(path.c_str(), &named) == 0 && held.st_dev == named.st_dev &&
         held.st_ino == named.st_ino;
}

}  // namespace

Result<FileLock> FileLock::acquire(const std::string& db_path) {
  const std::string path = db_path + ".lock";
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
      return fail(
          ExitCode::kRuntime,
          fmt::format("cannot create {} (the recorder's lock, next to the database): {}: give --db a path "
                      "in an existing, writable directory",
                      path, std::strerror(errno)));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      const std::string holder = holder_of(fd);
      ::close(fd);
      if (err == EWOULDBLOCK)
        return fail(
            ExitCode::kRuntime,
            fmt::format("{} is being recorded by another memsight record (pid {}): stop it first, or give "
                        "--db another file",
                        db_path, holder));
      return fail(ExitCode::kRuntime, fmt::format("cannot lock {}: {}", path, std::strerror(err)));
    }
    if (!still_linked(fd, path)) {
      ::close(fd);
      continue;
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
      // Only informative (the flock is the lock): a full disk must not stop the recorder here.
    }
    return FileLock(fd, path);
  }
  return fail(ExitCode::kRuntime, fmt::format("cannot lock {}: it keeps being replaced", path));
}

FileLock::~FileLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());
  ::close(fd_);
}

}  // namespace memsight::store
