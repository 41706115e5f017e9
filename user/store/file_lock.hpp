// The recorder's exclusive hold on a database: flock(2) on the sidecar `FILE.lock` (0600) for the
// recorder's lifetime. The kernel drops it when the process dies, even by SIGKILL, so a crashed
// recorder never blocks the next one. Readers take no lock (SQLite's WAL lets them read meanwhile).
#pragma once

#include <string>

#include "core/error.hpp"

namespace memsight::store {

class FileLock {
 public:
  // Fails (kRuntime) when another process, or another FileLock in this one, holds it; the message
  // names the holder's pid, read from the file.
  static Result<FileLock> acquire(const std::string& db_path);
  FileLock(FileLock&& other) noexcept : fd_(other.fd_), path_(std::move(other.path_)) { other.fd_ = -1; }
  FileLock& operator=(FileLock&&) = delete;
  // Unlinks the lock file while still holding it, then releases.
  ~FileLock();

 private:
  FileLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace memsight::store
