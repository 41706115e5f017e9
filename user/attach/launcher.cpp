#include "launcher.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

namespace memsight::attach {

Result<LaunchedCommand> LaunchedCommand::spawn(const std::vector<std::string>& argv, const std::string& executable) {
  int go[2], err[2];
  if (pipe2(go, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
    return fail(ExitCode::kRuntime, fmt::format("pipe: {}", std::strerror(errno)));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return fail(ExitCode::kRuntime, fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);  // memsight ignores it for itself; a pipeline's producer must still die of it
    close(go[1]);
    close(err[0]);
    char byte;
    if (read(go[0], &byte, 1) != 1) _exit(127);  // memsight gave up before releasing us
    execv(executable.c_str(), args.data());
    const int e = errno;
    (void)!write(err[1], &e, sizeof(e));
    _exit(127);
  }
  close(go[0]);
  close(err[1]);
  return LaunchedCommand(pid, go[1], err[0]);
}

LaunchedCommand::LaunchedCommand(LaunchedCommand&& o) noexcept
    : pid_(o.pid_), go_fd_(o.go_fd_), error_fd_(o.error_fd_), status_(o.status_) {
  o.pid_ = -1;
  o.go_fd_ = o.error_fd_ = -1;
}

LaunchedCommand::~LaunchedCommand() {
  if (go_fd_ >= 0) abandon();
  if (error_fd_ >= 0) close(error_fd_);
}

void LaunchedCommand::abandon() {
  if (go_fd_ < 0) return;
  close(go_fd_);  // the child reads EOF and exits 127
  go_fd_ = -1;
  int status;
  waitpid(pid_, &status, 0);
  status_ = status;
}

Result<void> LaunchedCommand::release() {
  const char go = 1;
  if (write(go_fd_, &go, 1) != 1) return fail(ExitCode::kRuntime, "cannot release the command");
  close(go_fd_);
  go_fd_ = -1;
  int e = 0;
  const ssize_t n = read(error_fd_, &e, sizeof(e));  // EOF: exec closed the pipe, it runs
  close(error_fd_);
  error_fd_ = -1;
  if (n == sizeof(e)) {
    int status;
    waitpid(pid_, &status, 0);
    status_ = status;
    return fail(ExitCode::kTargetMissing, fmt::format("cannot run the command: {}", std::strerror(e)));
  }
  return {};
}

std::optional<int> LaunchedCommand::poll_exit() {
  if (status_ || pid_ < 0) return status_;
  int status;
  if (waitpid(pid_, &status, WNOHANG) == pid_) status_ = status;
  return status_;
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return fmt::format("ended with wait status {:#x}", status);
}

}  // namespace memsight::attach
