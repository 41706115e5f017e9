// Builders of ring-buffer records exactly as the BPF side writes them (include/memsight/abi.h), for
// feeding the decoder and, through it, the tracker.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "memsight/abi.h"

namespace memsight::test {

using Bytes = std::vector<std::byte>;

template <typename Rec>
Bytes bytes_of(const Rec& r, size_t size = sizeof(Rec)) {
  Bytes b(size);
  std::memcpy(b.data(), &r, size);
  return b;
}

inline ms_header header(uint16_t kind, uint16_t size, uint32_t pid, uint32_t tid, uint64_t t) {
  ms_header h{};
  h.kind = kind;
  h.size = size;
  h.tgid = pid;
  h.tid = tid;
  h.time_ns = t;
  return h;
}

struct Wire {
  uint32_t pid = 100;
  uint32_t tid = 100;

  Bytes stack(uint64_t t, uint64_t id, std::vector<uint64_t> frames, uint16_t flags = 0) const {
    ms_stack s{};
    const auto size = static_cast<uint16_t>(MS_STACK_HEADER_BYTES + 8 * frames.size());
    s.h = header(MS_REC_STACK, size, pid, tid, t);
    s.stack_id = id;
    s.nr_frames = static_cast<uint16_t>(frames.size());
    s.flags = flags;
    if (!frames.empty()) std::memcpy(s.frames, frames.data(), 8 * frames.size());
    return bytes_of(s, size);
  }
  Bytes alloc(uint64_t t, uint64_t address, uint64_t size, uint64_t stack_id, uint16_t fn = MS_FN_MALLOC) const {
    ms_alloc a{};
    a.h = header(MS_REC_ALLOC, sizeof(a), pid, tid, t);
    a.address = address;
    a.size = size;
    a.stack_id = stack_id;
    a.fn = fn;
    return bytes_of(a);
  }
  Bytes release(uint64_t t, uint64_t address, uint64_t size = 0, uint16_t fn = MS_FN_FREE,
                uint16_t kind = MS_REC_FREE) const {
    ms_free f{};
    f.h = header(kind, sizeof(f), pid, tid, t);
    f.address = address;
    f.size = size;
    f.fn = fn;
    return bytes_of(f);
  }
  Bytes move_begin(uint64_t t, uint64_t address, uint64_t size = 0, uint16_t fn = MS_FN_REALLOC) const {
    return release(t, address, size, fn, MS_REC_MOVE_BEGIN);
  }
  Bytes move_end(uint64_t t, uint64_t address, uint64_t size, uint64_t stack_id,
                 uint16_t fn = MS_FN_REALLOC) const {
    ms_move_end m{};
    m.h = header(MS_REC_MOVE_END, sizeof(m), pid, tid, t);
    m.address = address;
    m.size = size;
    m.stack_id = stack_id;
    m.fn = fn;
    return bytes_of(m);
  }
  // A failed call. Limits default to unlimited (RLIM_INFINITY, ~0), as the kernel reports them.
  Bytes alloc_fail(uint64_t t, uint64_t size, uint64_t stack_id, uint16_t fn = MS_FN_MALLOC,
                   uint64_t rlimit_as = UINT64_MAX, uint64_t rlimit_data = UINT64_MAX,
                   uint64_t total_vm_pages = 0, uint64_t data_vm_pages = 0) const {
    ms_alloc_fail a{};
    a.h = header(MS_REC_ALLOC_FAIL, sizeof(a), pid, tid, t);
    a.size = size;
    a.stack_id = stack_id;
    a.rlimit_as = rlimit_as;
    a.rlimit_data = rlimit_data;
    a.total_vm_pages = total_vm_pages;
    a.data_vm_pages = data_vm_pages;
    a.fn = fn;
    return bytes_of(a);
  }
  Bytes exec(uint64_t t) const { return bytes_of(header(MS_REC_EXEC, sizeof(ms_header), pid, tid, t)); }
  Bytes exit(uint64_t t, const char* comm = "") const {
    ms_exit e{};
    e.h = header(MS_REC_EXIT, sizeof(e), pid, tid, t);
    std::memcpy(e.comm, comm, std::min(std::strlen(comm), sizeof(e.comm)));
    return bytes_of(e);
  }
  Bytes fork(uint64_t t, uint32_t child) const {
    ms_fork f{};
    f.h = header(MS_REC_FORK, sizeof(f), pid, tid, t);
    f.child_tgid = child;
    return bytes_of(f);
  }
};

}  // namespace memsight::test
