// What a stack's verdict is judged from, kept as records arrive: its outstanding bytes sampled over time
// and a birth-epoch histogram (bytes born per epoch, and how many of them still live).
//
// Bounded per stack: at most kMaxSamples samples and kMaxEpochs epochs. When either fills, neighbours
// merge in pairs (samples keep the lower value: the floor is the signal; epochs add up), so the
// resolution halves and the whole window stays covered. Epochs are shared by every stack: one
// EpochClock says where an instant falls.
#pragma once

#include <cstdint>
#include <vector>

#include "verdict.hpp"

namespace memsight::core {

constexpr size_t kMaxSamples = 128;
constexpr size_t kMaxEpochs = 32;

class EpochClock {
 public:
  explicit EpochClock(uint64_t epoch_ns = 1'000'000'000) : width_ns_(epoch_ns) {}
  // The first instant anything happened: epoch 0 starts there.
  void start(uint64_t time_ns) {
    if (!started_) origin_ns_ = time_ns, started_ = true;
  }
  size_t epoch_of(uint64_t time_ns) const {
    return time_ns <= origin_ns_ ? 0 : static_cast<size_t>((time_ns - origin_ns_) / width_ns_);
  }
  // Doubles the epoch length while `time_ns` would fall past the last epoch; returns how many times.
  int widen_for(uint64_t time_ns);
  uint64_t width_ns() const { return width_ns_; }

 private:
  uint64_t origin_ns_ = 0;
  uint64_t width_ns_;
  bool started_ = false;
};

class StackHistoryState {
 public:
  void on_birth(const EpochClock& clock, uint64_t born_ns, uint64_t bytes);
  void on_death(const EpochClock& clock, uint64_t born_ns, uint64_t bytes);
  void on_revival(const EpochClock& clock, uint64_t born_ns, uint64_t bytes);  // a failed realloc's block
  void sample(uint64_t time_ns, uint64_t bytes);
  void halve_epochs(int times);  // the clock widened

  // The history from the stack's first birth up to `now_ns`, for judge().
  StackHistory view(const EpochClock& clock, uint64_t now_ns, uint64_t allocs, uint64_t allocated_bytes) const;

 private:
  Epoch& epoch(const EpochClock& clock, uint64_t time_ns);
  std::vector<Sample> samples_;
  std::vector<Epoch> epochs_;  // index: EpochClock::epoch_of
};

}  // namespace memsight::core
