#include "ring_reader.hpp"

#include <bpf/libbpf.h>

#include <cerrno>
#include <span>
#include <string>

#include "attach/libbpf_log.hpp"

namespace memsight::attach {
namespace {

// What a record callback returns to stop libbpf's consume loop once the budget is spent (libbpf stops
// at a negative value and hands it back); nothing else returns it.
constexpr int kBudgetSpent = -ECANCELED;

}  // namespace

int RingReader::on_record(void* ctx, void* data, size_t size) {
  auto* budget = static_cast<Budget*>(ctx);
  budget->decoder->decode(std::span(static_cast<const std::byte*>(data), size));
  return --budget->left == 0 ? kBudgetSpent : 0;
}

void RingReader::stop() {
  if (ring_) ring_buffer__free(ring_);
  ring_ = nullptr;
}

Result<void> RingReader::start(const bpf_map* events, core::Decoder& decoder) {
  budget_.decoder = &decoder;
  ring_ = ring_buffer__new(bpf_map__fd(events), on_record, &budget_, nullptr);
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
  budget_.left = kRecordsPerDrain;
  const int woke = ring_buffer__poll(ring_, timeout_ms);
  if (woke == kBudgetSpent) return static_cast<int>(kRecordsPerDrain);
  if (woke < 0 && woke != -EINTR) return tl::unexpected(libbpf_error("ring buffer poll failed", woke));
  auto rest = drain();  // records written with BPF_RB_NO_WAKEUP wake nobody: take them on this tick
  if (!rest) return rest;
  return (woke > 0 ? woke : 0) + *rest;
}

Result<int> RingReader::drain() {
  budget_.left = kRecordsPerDrain;
  const int n = ring_buffer__consume(ring_);
  if (n == kBudgetSpent) return static_cast<int>(kRecordsPerDrain);
  if (n < 0 && n != -EINTR) return tl::unexpected(libbpf_error("ring buffer read failed", n));
  return n > 0 ? n : 0;
}

}  // namespace memsight::attach
