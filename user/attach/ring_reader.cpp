#include "ring_reader.hpp"

#include <bpf/libbpf.h>

#include <cerrno>
#include <span>
#include <string>

#include "attach/libbpf_log.hpp"

namespace memsight::attach {
namespace {

int on_sample(void* ctx, void* data, size_t size) {
  auto* decoder = static_cast<core::Decoder*>(ctx);
  decoder->decode(std::span(static_cast<const std::byte*>(data), size));
  return 0;
}

}  // namespace

void RingReader::stop() {
  if (ring_) ring_buffer__free(ring_);
  ring_ = nullptr;
}

Result<void> RingReader::start(const bpf_map* events, core::Decoder& decoder) {
  ring_ = ring_buffer__new(bpf_map__fd(events), on_sample, &decoder, nullptr);
  if (!ring_) return tl::unexpected(libbpf_error("cannot set up the ring buffer", errno));
  return {};
}

Result<void> RingReader::add(const bpf_map* ring, int (*on_record)(void*, void*, size_t), void* ctx,
                             const char* what) {
  if (int err = ring_buffer__add(ring_, bpf_map__fd(ring), on_record, ctx))
    return tl::unexpected(libbpf_error(std::string("cannot set up ") + what, err));
  return {};
}

Result<int> RingReader::poll(int timeout_ms) {
  const int woke = ring_buffer__poll(ring_, timeout_ms);
  if (woke < 0 && woke != -EINTR) return tl::unexpected(libbpf_error("ring buffer poll failed", woke));
  auto rest = drain();  // records written with BPF_RB_NO_WAKEUP wake nobody: take them on this tick
  if (!rest) return rest;
  return (woke > 0 ? woke : 0) + *rest;
}

Result<int> RingReader::drain() {
  const int n = ring_buffer__consume(ring_);
  if (n < 0 && n != -EINTR) return tl::unexpected(libbpf_error("ring buffer read failed", n));
  return n > 0 ? n : 0;
}

}  // namespace memsight::attach
