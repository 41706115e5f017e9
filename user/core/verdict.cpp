// The verdict rules of diagnosis.md, in order: too little evidence, churn, initialisation data, a leak
// (a rising floor *and* old bytes still alive from nearly every epoch), a backlog (rising, but old
// objects freed while the allocation rate rose and items wait longer), a bounded set (old objects freed, or a plateau).
#include "verdict.hpp"

#include <algorithm>
#include <numeric>

namespace memsight::core {
namespace {

double seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

// The floor: the minimum over a trailing window of `width` samples. A sawtooth's peaks vanish from it;
// a leak under churn still shows as a rising floor.
std::vector<Sample> rolling_floor(const std::vector<Sample>& samples, size_t width) {
  std::vector<Sample> floor;
  floor.reserve(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    const size_t from = i + 1 >= width ? i + 1 - width : 0;
    uint64_t low = UINT64_MAX;
    for (size_t j = from; j <= i; ++j) low = std::min(low, samples[j].bytes);
    floor.push_back(Sample{samples[i].time_ns, low});
  }
  return floor;
}

// Of the bytes born in the first half of the window, the part still alive. Measured against what the
// stack really kept then: the smaller of those born and the floor at mid-window, so that temporary
// buffers the same stack allocates and frees (churn on top of a leak) do not hide the leak, while a
// cache, whose old entries are gone, still scores near 0.
std::optional<double> first_half_survival(const std::vector<Epoch>& epochs, uint64_t floor_at_middle) {
  uint64_t born = 0, live = 0;
  for (size_t e = 0; e < epochs.size() / 2; ++e) born += epochs[e].born_bytes, live += epochs[e].live_bytes;
  const uint64_t kept = std::min(born, std::max<uint64_t>(floor_at_middle, 1));
  if (born == 0) return std::nullopt;
  return std::min(1.0, static_cast<double>(live) / static_cast<double>(kept));
}

uint64_t floor_at(const std::vector<Sample>& floor, uint64_t time_ns) {
  auto it = std::lower_bound(floor.begin(), floor.end(), time_ns,
                             [](const Sample& s, uint64_t t) { return s.time_ns < t; });
  return it == floor.end() ? floor.back().bytes : it->bytes;
}

// Of the epochs in which something was born, the fraction that still hold live bytes.
double epochs_alive(const std::vector<Epoch>& epochs) {
  size_t with_births = 0, alive = 0;
  for (const auto& e : epochs) {
    if (e.born_bytes == 0) continue;
    ++with_births;
    alive += e.live_bytes > 0;
  }
  return with_births ? static_cast<double>(alive) / static_cast<double>(with_births) : 0;
}

uint64_t births_between(const std::vector<Epoch>& epochs, size_t from, size_t to) {
  uint64_t n = 0;
  for (size_t e = from; e < std::min(to, epochs.size()); ++e) n += epochs[e].births;
  return n;
}

// Churn: what is alive at nine samples in ten is at most a couple of blocks, or (Little's law: live
// bytes = allocation rate x lifetime) lives less than kTransientLifetime on average.
constexpr double kTransientLifetime_s = 0.1;

bool is_transient(const StackHistory& h, double window_s) {
  std::vector<uint64_t> bytes;
  for (const auto& s : h.samples) bytes.push_back(s.bytes);
  std::nth_element(bytes.begin(), bytes.begin() + bytes.size() * 9 / 10, bytes.end());
  const double p90 = static_cast<double>(bytes[bytes.size() * 9 / 10]);
  const double mean_block = static_cast<double>(h.allocated_bytes) / static_cast<double>(h.allocs);
  const double rate = window_s > 0 ? static_cast<double>(h.allocated_bytes) / window_s : 0;
  return p90 <= 2 * mean_block || p90 <= rate * kTransientLifetime_s;
}

// A queue falling behind makes its items wait longer and longer. By Little's law an item's mean wait is
// live bytes / byte rate; the halves last equally long, so the second half's wait over the first's is
// (mean live bytes 2 / mean live bytes 1) x (bytes born 1 / bytes born 2). Requests that grow with the
// load but are each served as fast as before keep the ratio near 1: bigger, not waiting longer. Counting
// births alone can't tell them apart where a birth is a page (growth mode), not a request.
// A queue that falls far enough behind to matter also keeps its items long: at least `min_wait_s` in the
// second half. Requests held for a fraction of a second can't pass, however their sampled means swing.
bool waits_longer(const StackHistory& h, uint64_t middle_ns, double window_s, const VerdictRules& rules) {
  double live[2] = {0, 0}, count[2] = {0, 0}, born[2] = {0, 0};
  for (const auto& s : h.samples) {
    const int half = s.time_ns >= middle_ns;
    live[half] += static_cast<double>(s.bytes);
    count[half] += 1;
  }
  const size_t n = h.epochs.size();
  for (size_t e = 0; e < n; ++e) born[e >= n / 2] += static_cast<double>(h.epochs[e].born_bytes);
  if (count[0] == 0 || count[1] == 0 || born[1] == 0) return false;
  const double first = live[0] / count[0] / std::max(born[0], 1.0), second = live[1] / count[1] / born[1];
  return second >= rules.backlog_wait_rise * first && second * window_s / 2 >= rules.backlog_min_wait_s;
}

}  // namespace

const char* verdict_name(VerdictKind kind) {
  switch (kind) {
    case VerdictKind::kLeak: return "leak";
    case VerdictKind::kBounded: return "bounded";
    case VerdictKind::kTransient: return "transient";
    case VerdictKind::kBacklog: return "backlog";
    case VerdictKind::kStartup: return "startup";
    case VerdictKind::kUndecided: break;
  }
  return "undecided";
}

double theil_sen_slope(const std::vector<Sample>& samples) {
  std::vector<double> slopes;
  for (size_t i = 0; i < samples.size(); ++i)
    for (size_t j = i + 1; j < samples.size(); ++j) {
      if (samples[j].time_ns == samples[i].time_ns) continue;
      const double dy = static_cast<double>(samples[j].bytes) - static_cast<double>(samples[i].bytes);
      slopes.push_back(dy / seconds(samples[j].time_ns - samples[i].time_ns));
    }
  if (slopes.empty()) return 0;
  auto mid = slopes.begin() + slopes.size() / 2;
  std::nth_element(slopes.begin(), mid, slopes.end());
  return *mid;
}

Verdict judge(const StackHistory& h, const VerdictRules& rules) {
  Verdict v;
  v.samples = h.samples.size();
  v.epochs_alive = epochs_alive(h.epochs);
  if (h.samples.size() < rules.min_samples || h.allocs < rules.min_allocs || h.epochs.size() < 4) {
    v.why = h.samples.size() < rules.min_samples ? "too few samples yet" : "too few allocations yet";
    return v;
  }
  const auto floor = rolling_floor(h.samples, std::max<size_t>(3, h.samples.size() / 10));
  const uint64_t middle = h.samples.front().time_ns + (h.samples.back().time_ns - h.samples.front().time_ns) / 2;
  v.survival = first_half_survival(h.epochs, floor_at(floor, middle));
  v.floor_slope_bytes_per_s = theil_sen_slope(floor);
  // At least three points: a slope over one is 0, which would read as a plateau on a short history.
  const size_t tail = std::min(floor.size(), std::max<size_t>(3, floor.size() / 4));
  const std::vector<Sample> last_quarter(floor.end() - static_cast<long>(tail), floor.end());
  const double window_s = seconds(h.samples.back().time_ns - h.samples.front().time_ns);
  const double last_bytes = static_cast<double>(h.samples.back().bytes);
  // Rising: the floor gains at least 10% of what is live now over the window, and still rises in the
  // last quarter (no plateau).
  const bool rising = v.floor_slope_bytes_per_s > 0 && v.floor_slope_bytes_per_s * window_s >= 0.1 * last_bytes;
  const bool plateau = theil_sen_slope(last_quarter) * window_s / 4 < 0.02 * std::max(1.0, last_bytes);
  const size_t n = h.epochs.size();

  if (is_transient(h, window_s)) {
    v.kind = VerdictKind::kTransient;
    v.why = "freed soon after birth";
  } else if (births_between(h.epochs, n / 4, n) == 0) {
    v.kind = VerdictKind::kStartup;
    v.why = "born in the first epochs only";
  } else if (rising && !plateau && v.survival && *v.survival >= rules.leak_survival &&
             v.epochs_alive >= rules.leak_epochs_alive) {
    v.kind = VerdictKind::kLeak;
    v.why = "grows without plateau and old objects never die";
  } else if (rising && !plateau && v.survival && *v.survival < rules.backlog_survival &&
             static_cast<double>(births_between(h.epochs, n / 2, n)) >=
                 rules.backlog_rate_rise * static_cast<double>(births_between(h.epochs, 0, n / 2)) &&
             waits_longer(h, middle, window_s, rules)) {
    v.kind = VerdictKind::kBacklog;
    v.why = "grows while old objects are freed, the allocation rate rose and items wait longer";
  } else if (!rising || plateau || (v.survival && *v.survival < rules.backlog_survival)) {
    v.kind = VerdictKind::kBounded;
    v.why = plateau ? "grew, then plateaued" : "old objects are freed: only recent ones live";
  } else {
    v.why = "grows, but the old objects' survival is neither a leak's nor a cache's";
  }
  return v;
}

}  // namespace memsight::core
