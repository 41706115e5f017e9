// A libbpf ring buffer drained into the decoder: records written with BPF_RB_NO_WAKEUP wake nobody, so
// every poll also drains on its own (platform.md). A poll or drain takes at most kRecordsPerDrain records:
// when probes write faster than memsight reads (--all --mode exact on a busy host), the loop still gets
// back to its signals, exits and snapshots; what the ring can't hold meanwhile is counted as lost.
#pragma once

#include <cstdint>

#include "core/decoder.hpp"
#include "core/error.hpp"

struct ring_buffer;
struct bpf_map;

namespace memsight::attach {

class RingReader {
 public:
  RingReader() = default;
  RingReader(const RingReader&) = delete;
  RingReader& operator=(const RingReader&) = delete;
  ~RingReader() { stop(); }

  Result<void> start(const bpf_map* events, core::Decoder& decoder);
  // Another ring drained on the same polls, into `on_record(ctx, data, size)`; `what` names it in errors.
  Result<void> add(const bpf_map* ring, int (*on_record)(void*, void*, size_t), void* ctx, const char* what);
  static constexpr uint64_t kRecordsPerDrain = 1u << 18;
  Result<int> poll(int timeout_ms);
  Result<int> drain();
  // Frees the ring before its BPF object goes (idempotent).
  void stop();

 private:
  struct Budget {
    core::Decoder* decoder = nullptr;
    uint64_t left = 0;  // records this poll or drain may still take
  };
  static int on_record(void* ctx, void* data, size_t size);

  ring_buffer* ring_ = nullptr;
  Budget budget_;
};

}  // namespace memsight::attach
