#include "decoder.hpp"

#include <cstring>

#include "memsight/abi.h"
#include "wire_field.hpp"

namespace memsight::core {
namespace {

RecordHeader header_of(std::span<const std::byte> b) {
  return RecordHeader{MS_FIELD(b, ms_header, tgid), MS_FIELD(b, ms_header, tid),
                      MS_FIELD(b, ms_header, time_ns)};
}

// Fixed size of each fixed-size kind; 0 for kinds with a variable size or unknown.
size_t fixed_size(uint16_t kind) {
  switch (kind) {
    case MS_REC_ALLOC: return sizeof(ms_alloc);
    case MS_REC_FREE:
    case MS_REC_MOVE_BEGIN: return sizeof(ms_free);
    case MS_REC_MOVE_END: return sizeof(ms_move_end);
    case MS_REC_EXEC: return sizeof(ms_header);
    case MS_REC_EXIT: return sizeof(ms_exit);
    case MS_REC_FORK: return sizeof(ms_fork);
    case MS_REC_ALLOC_FAIL: return sizeof(ms_alloc_fail);
    default: return 0;
  }
}

}  // namespace

DecodeStatus Decoder::reject(DecodeStatus status) {
  switch (status) {
    case DecodeStatus::kTruncated: ++counters_.truncated; break;
    case DecodeStatus::kBadSize: ++counters_.bad_size; break;
    case DecodeStatus::kUnknownKind: ++counters_.unknown_kind; break;
    case DecodeStatus::kOk: break;
  }
  return status;
}

DecodeStatus Decoder::decode(std::span<const std::byte> bytes) {
  if (bytes.size() < sizeof(ms_header)) return reject(DecodeStatus::kTruncated);
  const auto kind = MS_FIELD(bytes, ms_header, kind);
  const size_t size = MS_FIELD(bytes, ms_header, size);
  if (size > bytes.size()) return reject(DecodeStatus::kTruncated);
  const auto b = bytes.first(size);
  const RecordHeader h = header_of(b);

  if (kind == MS_REC_STACK) {
    if (size < MS_STACK_HEADER_BYTES) return reject(DecodeStatus::kTruncated);
    const size_t n = MS_FIELD(b, ms_stack, nr_frames);
    if (n == 0 || n > MS_MAX_FRAMES || size != MS_STACK_HEADER_BYTES + n * sizeof(uint64_t))
      return reject(DecodeStatus::kBadSize);
    frames_.resize(n);
    std::memcpy(frames_.data(), b.data() + offsetof(ms_stack, frames), n * sizeof(uint64_t));
    const bool truncated = MS_FIELD(b, ms_stack, flags) & MS_STACK_TRUNCATED;
    ++counters_.records;
    sink_.on_stack(StackRecord{h, MS_FIELD(b, ms_stack, stack_id), truncated, frames_});
    return DecodeStatus::kOk;
  }
  const size_t want = fixed_size(kind);
  if (want == 0) return reject(DecodeStatus::kUnknownKind);
  if (size != want) return reject(DecodeStatus::kBadSize);
  ++counters_.records;
  switch (kind) {
    case MS_REC_ALLOC:
      sink_.on_alloc(AllocRecord{h, MS_FIELD(b, ms_alloc, address), MS_FIELD(b, ms_alloc, size),
                                 MS_FIELD(b, ms_alloc, stack_id), MS_FIELD(b, ms_alloc, fn)});
      break;
    case MS_REC_FREE:
    case MS_REC_MOVE_BEGIN:
      sink_.on_free(FreeRecord{h, MS_FIELD(b, ms_free, address), MS_FIELD(b, ms_free, size),
                               MS_FIELD(b, ms_free, fn), kind == MS_REC_MOVE_BEGIN});
      break;
    case MS_REC_MOVE_END:
      sink_.on_move_end(MoveEndRecord{h, MS_FIELD(b, ms_move_end, address),
                                      MS_FIELD(b, ms_move_end, size),
                                      MS_FIELD(b, ms_move_end, stack_id), MS_FIELD(b, ms_move_end, fn)});
      break;
    case MS_REC_EXEC: sink_.on_exec(h); break;
    case MS_REC_EXIT: {
      char comm[sizeof(ms_exit::comm) + 1] = {};
      std::memcpy(comm, b.data() + offsetof(ms_exit, comm), sizeof(ms_exit::comm));
      sink_.on_process_exit(ExitRecord{h, comm});
      break;
    }
    case MS_REC_FORK: sink_.on_fork(ForkRecord{h, MS_FIELD(b, ms_fork, child_tgid)}); break;
    case MS_REC_ALLOC_FAIL:
      sink_.on_alloc_fail(
          AllocFailRecord{h, MS_FIELD(b, ms_alloc_fail, size), MS_FIELD(b, ms_alloc_fail, stack_id),
                          MS_FIELD(b, ms_alloc_fail, rlimit_as), MS_FIELD(b, ms_alloc_fail, rlimit_data),
                          MS_FIELD(b, ms_alloc_fail, total_vm_pages),
                          MS_FIELD(b, ms_alloc_fail, data_vm_pages), MS_FIELD(b, ms_alloc_fail, fn)});
      break;
  }
  return DecodeStatus::kOk;
}

}  // namespace memsight::core
