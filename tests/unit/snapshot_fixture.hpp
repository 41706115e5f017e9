// The snapshot the renderer tests share: pid 42 ("app") holding 1536 bytes in two blocks from one
// stack at 0x1000 (malloc) <- 0x2000 <- 0x3000, frames not yet resolved.
#pragma once

#include "core/snapshot.hpp"

namespace memsight::test {

inline core::StackRow app_stack_row() {
  core::StackRow row;
  row.stack_id = 0xabc;
  row.pid = 42;
  row.outstanding_bytes = 1536;
  row.outstanding_allocs = 2;
  row.allocated_bytes = 2048;
  row.allocs = 3;
  row.frees = 1;
  row.frames = {0x1000, 0x2000, 0x3000};
  return row;
}

inline core::Snapshot app_snapshot() {
  core::Snapshot snap;
  snap.time_ns = 5;
  snap.time_unix_ns = 1700000000000000000;
  core::ProcessRow p;
  p.pid = 42;
  p.comm = "app";
  p.outstanding_bytes = 1536;
  p.outstanding_allocs = 2;
  snap.processes.push_back(p);
  snap.stacks.push_back(app_stack_row());
  return snap;
}

}  // namespace memsight::test
