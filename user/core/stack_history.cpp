#include "stack_history.hpp"

#include <algorithm>

namespace memsight::core {

int EpochClock::widen_for(uint64_t time_ns) {
  int times = 0;
  while (epoch_of(time_ns) >= kMaxEpochs) width_ns_ *= 2, ++times;
  return times;
}

Epoch& StackHistoryState::epoch(const EpochClock& clock, uint64_t time_ns) {
  const size_t e = std::min(clock.epoch_of(time_ns), kMaxEpochs - 1);
  if (epochs_.size() <= e) epochs_.resize(e + 1);
  return epochs_[e];
}

void StackHistoryState::on_birth(const EpochClock& clock, uint64_t born_ns, uint64_t bytes) {
  Epoch& e = epoch(clock, born_ns);
  e.born_bytes += bytes;
  e.live_bytes += bytes;
  e.births += 1;
}

void StackHistoryState::on_death(const EpochClock& clock, uint64_t born_ns, uint64_t bytes) {
  Epoch& e = epoch(clock, born_ns);
  e.live_bytes -= std::min(e.live_bytes, bytes);
}

void StackHistoryState::on_revival(const EpochClock& clock, uint64_t born_ns, uint64_t bytes) {
  epoch(clock, born_ns).live_bytes += bytes;
}

void StackHistoryState::sample(uint64_t time_ns, uint64_t bytes) {
  if (samples_.size() == kMaxSamples) {
    for (size_t i = 0; i < kMaxSamples / 2; ++i)
      samples_[i] = Sample{samples_[2 * i].time_ns, std::min(samples_[2 * i].bytes, samples_[2 * i + 1].bytes)};
    samples_.resize(kMaxSamples / 2);
  }
  samples_.push_back(Sample{time_ns, bytes});
}

void StackHistoryState::halve_epochs(int times) {
  for (int t = 0; t < times; ++t) {
    std::vector<Epoch> merged((epochs_.size() + 1) / 2);
    for (size_t i = 0; i < epochs_.size(); ++i) {
      merged[i / 2].born_bytes += epochs_[i].born_bytes;
      merged[i / 2].live_bytes += epochs_[i].live_bytes;
      merged[i / 2].births += epochs_[i].births;
    }
    epochs_ = std::move(merged);
  }
}

StackHistory StackHistoryState::view(const EpochClock& clock, uint64_t now_ns, uint64_t allocs,
                                     uint64_t allocated_bytes) const {
  StackHistory h;
  h.samples = samples_;
  auto first = std::find_if(epochs_.begin(), epochs_.end(), [](const Epoch& e) { return e.births > 0; });
  h.epochs.assign(first, epochs_.end());
  // Epochs since the last birth are empty, but part of the window.
  const size_t through = std::min(clock.epoch_of(now_ns), kMaxEpochs - 1) + 1;
  const size_t start = static_cast<size_t>(first - epochs_.begin());
  if (through > start && h.epochs.size() < through - start) h.epochs.resize(through - start);
  h.allocs = allocs;
  h.allocated_bytes = allocated_bytes;
  return h;
}

}  // namespace memsight::core
