// `memsight trace -- COMMAND`: start the command held before exec, so the probes are in place before
// it runs its first instruction, then let it go.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace memsight::attach {

class LaunchedCommand {
 public:
  // Forks; the child waits, with default signal handling and an empty signal mask, until release().
  static Result<LaunchedCommand> spawn(const std::vector<std::string>& argv, const std::string& executable);
  LaunchedCommand(LaunchedCommand&& other) noexcept;
  LaunchedCommand& operator=(LaunchedCommand&&) = delete;
  ~LaunchedCommand();

  pid_t pid() const { return pid_; }
  // Lets the child exec. Fails (exit 4) when exec failed; the child is then reaped.
  Result<void> release();
  // Reaps the child if it has exited; its wait status once it has.
  std::optional<int> poll_exit();
  // Kills a child that was never released (memsight failed to attach).
  void abandon();

 private:
  LaunchedCommand(pid_t pid, int go_fd, int error_fd) : pid_(pid), go_fd_(go_fd), error_fd_(error_fd) {}
  pid_t pid_ = -1;
  int go_fd_ = -1;     // write end: one byte lets the child exec
  int error_fd_ = -1;  // read end: the child writes errno here if exec fails (close-on-exec otherwise)
  std::optional<int> status_;
};

// Describes a wait status for people: "exited with status 3", "killed by signal 9 (Killed)".
std::string describe_wait_status(int status);

}  // namespace memsight::attach
