#include "hold_guard.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>

namespace memsight::attach {
namespace {

constexpr int kMaxWatched = 4096;  // pidfds the guardian keeps (targets memsight started: a handful)

// "T (stopped)" in /proc/PID/stat's third field: the process is in a group stop.
bool stopped(int pid) {
  char path[64], text[512];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t n = read(fd, text, sizeof(text) - 1);
  close(fd);
  if (n <= 0) return false;
  text[n] = 0;
  const char* paren = std::strrchr(text, ')');  // the command name may hold spaces and parentheses
  return paren && paren[1] == ' ' && paren[2] == 'T';
}

// The guardian: only async-signal-safe calls (it is a fork of a process that may have threads later).
[[noreturn]] void guard(int fd) {
  // Ctrl-C and hang-ups are for memsight and the command, not for the guardian.
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGQUIT, SIG_IGN);
  // Not a reader or writer of memsight's terminal or pipes: whoever waits for their end of file must
  // not wait for the guardian.
  const int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int std_fd = 0; null >= 0 && std_fd <= 2; ++std_fd) dup2(null, std_fd);
  int pids[kMaxWatched], pidfds[kMaxWatched], n = 0;
  uint32_t pid;
  for (;;) {
    const ssize_t got = read(fd, &pid, sizeof(pid));
    if (got == sizeof(pid)) {
      const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
      if (pidfd >= 0 && n < kMaxWatched) {
        pids[n] = static_cast<int>(pid);
        pidfds[n++] = pidfd;
      }
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    break;  // end of file: memsight is gone
  }
  for (int i = 0; i < n; ++i)
    if (stopped(pids[i])) syscall(SYS_pidfd_send_signal, pidfds[i], SIGCONT, nullptr, 0);
  _exit(0);
}

}  // namespace

Result<HoldGuard> HoldGuard::start() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return fail(ExitCode::kRuntime, fmt::format("pipe: {}", std::strerror(errno)));
  const pid_t pid = fork();
  if (pid < 0) return fail(ExitCode::kRuntime, fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    close(p[1]);
    prctl(PR_SET_NAME, "memsight-guard");
    guard(p[0]);
  }
  close(p[0]);
  return HoldGuard(pid, p[1]);
}

HoldGuard::HoldGuard(HoldGuard&& o) noexcept : guardian_(o.guardian_), fd_(o.fd_) {
  o.guardian_ = -1;
  o.fd_ = -1;
}

HoldGuard::~HoldGuard() {
  if (fd_ >= 0) close(fd_);
  if (guardian_ > 0) waitpid(guardian_, nullptr, 0);
}

bool HoldGuard::watch(uint32_t pid) {
  return fd_ >= 0 && write(fd_, &pid, sizeof(pid)) == static_cast<ssize_t>(sizeof(pid));
}

}  // namespace memsight::attach
