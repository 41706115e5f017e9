#include "alloc_failure.hpp"

#include <utility>

namespace memsight::core {
namespace {

// The kernel's RLIM_INFINITY is ~0 on every 64-bit architecture.
std::optional<uint64_t> limit_of(uint64_t rlim_cur) {
  return rlim_cur == UINT64_MAX ? std::nullopt : std::optional<uint64_t>(rlim_cur);
}

}  // namespace

AllocFailure alloc_failure_of(const AllocFailRecord& r, uint64_t page_bytes) {
  AllocFailure f;
  f.time_ns = r.h.time_ns;
  f.pid = r.h.pid;
  f.tid = r.h.tid;
  f.fn = r.fn;
  f.size = r.size;
  f.stack_id = r.stack_id;
  f.rlimit_as_bytes = limit_of(r.rlimit_as);
  f.rlimit_data_bytes = limit_of(r.rlimit_data);
  f.total_vm_bytes = r.total_vm_pages * page_bytes;
  f.data_vm_bytes = r.data_vm_pages * page_bytes;
  return f;
}

bool FailureQueue::push(const AllocFailure& failure) {
  if (waiting_.size() >= kCapacity) return false;
  waiting_.push_back(failure);
  return true;
}

std::vector<AllocFailure> FailureQueue::take() {
  std::vector<AllocFailure> out = std::move(waiting_);
  waiting_.clear();  // a moved-from vector is valid but unspecified: make it empty
  return out;
}

}  // namespace memsight::core
