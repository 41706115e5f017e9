// The promise that a process memsight stops (SIGSTOP, to attach before it goes on: see ms_rtld and
// ms_own_new) is never left stopped, even if memsight is killed with SIGKILL: a small guardian process,
// forked at start, holds the read end of a pipe whose only writer is memsight. memsight sends it each
// stoppable process as it registers it; when the pipe reads end of file (memsight exited, however it
// died), the guardian sends SIGCONT to those of them still stopped, through pidfds taken at
// registration (a reused pid is never signalled), and exits.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "core/error.hpp"

namespace memsight::attach {

class HoldGuard {
 public:
  // Forks the guardian. Call before any thread is started.
  static Result<HoldGuard> start();
  HoldGuard(HoldGuard&& other) noexcept;
  HoldGuard& operator=(HoldGuard&&) = delete;
  ~HoldGuard();  // closes the pipe: the guardian resumes what is left and exits; reaped here

  // Hands `pid` to the guardian. Returns false if the guardian is gone (then don't stop `pid`).
  bool watch(uint32_t pid);

 private:
  HoldGuard(pid_t guardian, int fd) : guardian_(guardian), fd_(fd) {}
  pid_t guardian_ = -1;
  int fd_ = -1;  // write end
};

}  // namespace memsight::attach
