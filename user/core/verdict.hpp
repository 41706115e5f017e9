// Per-stack verdicts (diagnosis.md): leak, bounded, transient, backlog, startup, undecided, each with
// the numbers it rests on. Judged from the stack's history: its outstanding bytes sampled over time and
// a birth-epoch histogram of what it allocated and what of that is still alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace memsight::core {

enum class VerdictKind { kUndecided, kLeak, kBounded, kTransient, kBacklog, kStartup };

const char* verdict_name(VerdictKind kind);  // "leak", "bounded", ... as in the JSON contract

struct Verdict {
  VerdictKind kind = VerdictKind::kUndecided;
  double floor_slope_bytes_per_s = 0;  // Theil-Sen slope of the rolling minimum of outstanding bytes
  std::optional<double> survival;      // of the bytes the stack kept in the first half of the window, the
                                       // part alive now (see verdict.cpp)
  double epochs_alive = 0;             // fraction of epochs with births that still hold live bytes
  size_t samples = 0;                  // samples of outstanding bytes the verdict saw
  std::string why;                     // one phrase, for people
};

// One sample of a stack's outstanding bytes.
struct Sample {
  uint64_t time_ns = 0;
  uint64_t bytes = 0;
};

// Bytes born in one epoch, and how many of them are still alive.
struct Epoch {
  uint64_t born_bytes = 0;
  uint64_t live_bytes = 0;
  uint64_t births = 0;
};

struct StackHistory {
  std::vector<Sample> samples;  // oldest first, evenly spaced in time (roughly)
  std::vector<Epoch> epochs;    // oldest first, equal lengths, covering the window
  uint64_t allocs = 0;          // births in the window
  uint64_t allocated_bytes = 0;
};

struct VerdictRules {
  size_t min_samples = 30;         // fewer: undecided
  uint64_t min_allocs = 50;        // fewer: undecided
  double leak_survival = 0.90;     // first-half bytes still alive, at least
  double leak_epochs_alive = 0.80; // epochs with births that still hold bytes, at least
  double backlog_survival = 0.50;  // first-half bytes still alive, below
  double backlog_rate_rise = 1.20; // second-half births over first-half births, at least
  double backlog_wait_rise = 1.50; // second-half mean wait (Little's law) over the first half's, at least
  double backlog_min_wait_s = 1.0; // second-half mean wait, seconds, at least
};

Verdict judge(const StackHistory& history, const VerdictRules& rules = {});

// The Theil-Sen estimator: the median of the slopes between every pair of points (per second).
// Robust to the outliers a sawtooth makes. O(n^2) over at most a few hundred samples.
double theil_sen_slope(const std::vector<Sample>& samples);

}  // namespace memsight::core
