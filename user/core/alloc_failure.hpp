// Allocation failures: an allocating call of a traced process that returned NULL (MAP_FAILED, an
// error), as a value with its limits in bytes, and the bounded queue that holds them until the
// session takes them. Pure: a record in, values out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "records.hpp"

namespace memsight::core {

struct AllocFailure {
  uint64_t time_ns = 0;  // CLOCK_MONOTONIC of the failed call's return
  uint32_t pid = 0;      // thread group id
  uint32_t tid = 0;
  uint16_t fn = 0;        // MS_FN_*: the function the program called
  uint64_t size = 0;      // bytes requested (calloc n * size, realloc/mremap the new size, mmap length);
                          // UINT64_MAX when n * size overflowed
  uint64_t stack_id = 0;  // the stack record sent before it; 0 when it could not be sent
  std::optional<uint64_t> rlimit_as_bytes;    // RLIMIT_AS soft limit; empty = unlimited
  std::optional<uint64_t> rlimit_data_bytes;  // RLIMIT_DATA soft limit; empty = unlimited
  uint64_t total_vm_bytes = 0;                // mapped virtual memory at the failure (counts to RLIMIT_AS)
  uint64_t data_vm_bytes = 0;                 // private writable memory at the failure (to RLIMIT_DATA)
};

// page_bytes converts the kernel's page counts (the page size of the machine the record came from).
AllocFailure alloc_failure_of(const AllocFailRecord& r, uint64_t page_bytes);

// Failures waiting to be taken, oldest first. When full, a new failure is dropped and counted, not
// an old one: the first failures of a burst say what started it, the rest mostly repeat it.
class FailureQueue {
 public:
  static constexpr size_t kCapacity = 256;

  // False when the queue was full and the failure was dropped.
  bool push(const AllocFailure& failure);
  // Everything waiting, oldest first; the queue is left empty.
  std::vector<AllocFailure> take();
  size_t size() const { return waiting_.size(); }

 private:
  std::vector<AllocFailure> waiting_;
};

}  // namespace memsight::core
