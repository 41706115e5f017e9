// Tracker::evidence: what the OOM explainer needs of the stacks at the kill. One pass over the live
// blocks and mappings of the given processes: bytes, the part born in the last seconds (a burst shows
// there), and the biggest recent block (a single huge request).
#include <algorithm>

#include "tracker.hpp"

namespace memsight::core {

std::vector<StackEvidence> Tracker::evidence(const std::vector<uint32_t>& pids, uint64_t now_ns, uint64_t recent_ns,
                                             const VerdictRules& rules) const {
  const uint64_t since = now_ns > recent_ns ? now_ns - recent_ns : 0;
  struct Tally {
    uint64_t bytes = 0, allocs = 0, recent = 0, largest_recent = 0, oldest_born = UINT64_MAX;
    // `w`: what the block counts for (itself, or under sampling what it stands for); `size`: itself.
    void add(SampleWeight w, uint64_t size, uint64_t born, uint64_t since) {
      bytes += w.bytes;
      allocs += w.allocs;
      oldest_born = std::min(oldest_born, born);
      if (born < since) return;
      recent += w.bytes;
      largest_recent = std::max(largest_recent, size);
    }
  };
  std::unordered_map<uint64_t, Tally> live;
  for (uint32_t pid : pids) {
    const auto p = processes_.find(pid);
    if (p == processes_.end()) continue;
    for (const auto& [address, b] : p->second.blocks)
      live[b.stack_id].add(weigh(address, b.size), b.size, b.born_ns, since);
    for (const auto& [start, m] : p->second.mappings.pieces())
      live[m.stack_id].add({m.charged_bytes(), m.charged_count()}, m.bytes(), m.born_ns, since);
  }
  std::vector<StackEvidence> out;
  for (const auto& [id, t] : live) {
    const auto s = stacks_.find(id);
    if (s == stacks_.end()) continue;
    StackEvidence e;
    e.row = stack_row(id, s->second, now_ns, rules);
    e.row.outstanding_bytes = t.bytes;
    e.row.outstanding_allocs = t.allocs;
    e.row.oldest_age_s = static_cast<double>(now_ns > t.oldest_born ? now_ns - t.oldest_born : 0) / 1e9;
    const uint64_t seen = now_ns > s->second.first_seen_ns ? now_ns - s->second.first_seen_ns : 0;
    if (seen > 0) e.row.growth_bytes_per_s = static_cast<double>(t.bytes) / (static_cast<double>(seen) / 1e9);
    e.recent_bytes = t.recent;
    e.largest_recent_block = t.largest_recent;
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const StackEvidence& a, const StackEvidence& b) {
    if (a.row.outstanding_bytes != b.row.outstanding_bytes) return a.row.outstanding_bytes > b.row.outstanding_bytes;
    return a.row.stack_id < b.row.stack_id;
  });
  return out;
}

std::optional<StackRow> Tracker::stack_of(uint64_t stack_id, uint64_t now_ns, const VerdictRules& rules) const {
  const auto s = stacks_.find(stack_id);
  if (s == stacks_.end()) return std::nullopt;
  StackRow row = stack_row(stack_id, s->second, now_ns, rules);
  row.outstanding_bytes = s->second.outstanding_bytes;
  row.outstanding_allocs = s->second.outstanding_allocs;
  return row;
}

}  // namespace memsight::core
