// Decoded ring-buffer records (include/memsight/abi.h) as C++ values, and the sink that receives them.
// The decoder copies fields out of the wire bytes; nothing here aliases ring-buffer memory.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace memsight::core {

struct RecordHeader {
  uint32_t pid = 0;      // thread group id
  uint32_t tid = 0;      // thread id
  uint64_t time_ns = 0;  // CLOCK_MONOTONIC
};

struct StackRecord {
  RecordHeader h;
  uint64_t stack_id = 0;
  bool truncated = false;            // the walk filled every slot: outer frames may be missing
  std::span<const uint64_t> frames;  // frames[0]: allocator entry; frames[1]: its direct caller. Valid
                                     // only during the call that delivers the record.
};

struct AllocRecord {
  RecordHeader h;
  uint64_t address = 0;
  uint64_t size = 0;      // bytes requested; mmap: length
  uint64_t stack_id = 0;  // 0: the stack could not be sent (counted in BPF)
  uint16_t fn = 0;        // MS_FN_*
};

// A release written at function entry: free/munmap (move_begin false) or the old side of
// realloc/mremap (move_begin true), whose outcome a MoveEndRecord of the same thread tells.
struct FreeRecord {
  RecordHeader h;
  uint64_t address = 0;
  uint64_t size = 0;  // 0 for heap blocks; bytes of the range for munmap/mremap
  uint16_t fn = 0;
  bool move_begin = false;
};

struct MoveEndRecord {
  RecordHeader h;
  uint64_t address = 0;  // new block; 0: failed (old block kept) or realloc(p, 0) (old block freed)
  uint64_t size = 0;     // bytes requested
  uint64_t stack_id = 0;
  uint16_t fn = 0;
};

struct ExitRecord {
  RecordHeader h;    // pid: the process that exited
  std::string comm;  // its command name; empty when unknown
};

struct ForkRecord {
  RecordHeader h;  // pid: the parent
  uint32_t child = 0;
};

// An allocating call that failed (NULL, MAP_FAILED, or an error from posix_memalign), with the
// limits it may have run into. Changes no outstanding bytes: nothing was born.
struct AllocFailRecord {
  RecordHeader h;
  uint64_t size = 0;            // bytes requested; UINT64_MAX when calloc's n * size overflowed
  uint64_t stack_id = 0;        // 0: the stack could not be sent (counted in BPF)
  uint64_t rlimit_as = 0;       // RLIMIT_AS soft limit, bytes; UINT64_MAX = unlimited
  uint64_t rlimit_data = 0;     // RLIMIT_DATA soft limit, bytes; UINT64_MAX = unlimited
  uint64_t total_vm_pages = 0;  // mapped virtual memory at the failure, pages
  uint64_t data_vm_pages = 0;   // private writable memory at the failure, pages
  uint16_t fn = 0;              // MS_FN_*
};

class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual void on_stack(const StackRecord& r) = 0;
  virtual void on_alloc(const AllocRecord& r) = 0;
  virtual void on_free(const FreeRecord& r) = 0;
  virtual void on_move_end(const MoveEndRecord& r) = 0;
  virtual void on_exec(const RecordHeader& h) = 0;
  virtual void on_fork(const ForkRecord& r) = 0;
  // Optional: a sink that does not care about failures ignores them.
  virtual void on_alloc_fail(const AllocFailRecord&) {}
  // Optional: the process's last thread exited (growth mode says so; exact mode watches pidfds).
  virtual void on_process_exit(const ExitRecord&) {}
};

}  // namespace memsight::core
