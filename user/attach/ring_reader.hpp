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
  Result<int> poll(int timeout_ms);
  Result<int> drain();
  // Frees the ring before its BPF object goes (idempotent).
  void stop();

 private:
  ring_buffer* ring_ = nullptr;
};

}  // namespace memsight::attach
