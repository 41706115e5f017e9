// A libbpf ring buffer drained into the decoder: records written with BPF_RB_NO_WAKEUP wake nobody, so
// every poll also drains on its own (platform.md).
#pragma once

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
  Result<int> poll(int timeout_ms);
  Result<int> drain();
  // Frees the ring before its BPF object goes (idempotent).
  void stop();

 private:
  ring_buffer* ring_ = nullptr;
};

}  // namespace memsight::attach
