// Tracker::snapshot: one pass over the live blocks gives each stack's bytes old enough for --min-age
// and its oldest birth; the cumulative counters come from the stack states.
#include <algorithm>

#include "tracker.hpp"

namespace memsight::core {
namespace {

struct LiveTally {
  uint64_t bytes = 0;
  uint64_t allocs = 0;
  uint64_t oldest_born_ns = UINT64_MAX;
  void add(SampleWeight w, uint64_t born_ns, uint64_t cutoff_ns) {  // w: what the block counts for
    oldest_born_ns = std::min(oldest_born_ns, born_ns);
    if (born_ns > cutoff_ns) return;  // too young for --min-age
    bytes += w.bytes;
    allocs += w.allocs;
  }
};

double seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

}  // namespace

Snapshot Tracker::snapshot(uint64_t now_ns, const SnapshotOptions& options) {
  const uint64_t cutoff = now_ns >= options.min_age_ns ? now_ns - options.min_age_ns : 0;
  std::unordered_map<uint64_t, LiveTally> live;
  live.reserve(stacks_.size());
  Snapshot snap;
  snap.time_ns = now_ns;
  for (const auto& [pid, p] : processes_) {
    for (const auto& [address, b] : p.blocks) live[b.stack_id].add(weigh(address, b.size), b.born_ns, cutoff);
    for (const auto& [start, m] : p.mappings.pieces())
      live[m.stack_id].add({m.charged_bytes(), m.charged_count()}, m.born_ns, cutoff);
    ProcessRow row;
    row.pid = pid;
    row.outstanding_bytes = p.outstanding_bytes;
    row.outstanding_allocs = p.outstanding_allocs;
    row.unmatched_frees = p.unmatched_frees;
    row.exited = p.exited_ns.has_value();
    if (!p.comm.empty()) row.comm = p.comm;
    snap.processes.push_back(row);
  }
  std::sort(snap.processes.begin(), snap.processes.end(),
            [](const ProcessRow& a, const ProcessRow& b) { return a.pid < b.pid; });

  for (auto& [id, s] : stacks_) {
    if (s.allocs == 0) continue;  // a stack record whose births were all lost
    // A process that exited grows no more: its window ends at the exit.
    const uint64_t end = std::min(now_ns, processes_[s.pid].exited_ns.value_or(now_ns));
    StackRow row = stack_row(id, s, end, VerdictRules{});
    const auto tally = live.find(id);
    if (tally != live.end()) {
      row.outstanding_bytes = tally->second.bytes;
      row.outstanding_allocs = tally->second.allocs;
      const uint64_t ref = std::min(now_ns, processes_[s.pid].exited_ns.value_or(now_ns));
      const uint64_t born = tally->second.oldest_born_ns;
      row.oldest_age_s = seconds(ref > born ? ref - born : 0);
    }
    const uint64_t since = options.whole_trace ? s.first_seen_ns : s.last_time_ns;
    const uint64_t before = options.whole_trace ? 0 : s.last_outstanding;
    if (end > since) {
      const double delta = static_cast<double>(s.outstanding_bytes) - static_cast<double>(before);
      row.growth_bytes_per_s = delta / seconds(end - since);
    }
    s.last_outstanding = s.outstanding_bytes;
    s.last_time_ns = now_ns;
    snap.stacks.push_back(std::move(row));
  }
  std::sort(snap.stacks.begin(), snap.stacks.end(), [](const StackRow& a, const StackRow& b) {
    if (a.outstanding_bytes != b.outstanding_bytes) return a.outstanding_bytes > b.outstanding_bytes;
    if (a.allocated_bytes != b.allocated_bytes) return a.allocated_bytes > b.allocated_bytes;
    return a.stack_id < b.stack_id;
  });
  if (options.top && snap.stacks.size() > options.top) snap.stacks.resize(options.top);
  snap.lost.unmatched_frees = counters_.unmatched_frees;
  snap.lost.refused_blocks = counters_.refused_blocks;
  if (config_.sample_bytes) snap.sample_bytes = config_.sample_bytes;
  if (config_.fault_sample_bytes) snap.sample_bytes = config_.fault_sample_bytes;
  return snap;
}

StackRow Tracker::stack_row(uint64_t id, const StackState& s, uint64_t end_ns, const VerdictRules& rules) const {
  StackRow row;
  row.stack_id = id;
  row.pid = s.pid;
  row.allocated_bytes = s.allocated_bytes;
  row.allocs = s.allocs;
  row.frees = s.frees;
  row.frames = s.frames;
  row.truncated = s.truncated;
  StackHistory history = s.history.view(clock_, end_ns, s.allocs, s.allocated_bytes);
  row.verdict = judge(history, rules);
  row.epochs = std::move(history.epochs);
  row.epoch_ns = clock_.width_ns();
  return row;
}

}  // namespace memsight::core
