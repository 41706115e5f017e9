#include "oom_history_book.hpp"

#include <algorithm>

namespace memsight::core {
namespace {

bool inside(const std::string& path, const std::string& domain) {
  if (domain == "/" || path == domain) return true;
  return path.size() > domain.size() && path.compare(0, domain.size(), domain) == 0 && path[domain.size()] == '/';
}

template <typename Point>
void drop_before(std::vector<Point>& series, uint64_t cutoff, uint64_t Point::*time) {
  const auto keep = std::find_if(series.begin(), series.end(), [&](const Point& p) { return p.*time >= cutoff; });
  series.erase(series.begin(), keep);
}

}  // namespace

void HistoryBook::trim(std::vector<Sample>& series, uint64_t now) const {
  if (now > window_ns_) drop_before(series, now - window_ns_, &Sample::time_ns);
}

void HistoryBook::observe(const Snapshot& snap) {
  const uint64_t now = snap.time_unix_ns;
  if (first_unix_ns_ == 0) first_unix_ns_ = now;
  std::map<std::string, const CgroupMemory*> seen;
  for (const auto& row : snap.processes) {
    if (row.exited) continue;  // nothing new to say, and its numbers are gone
    ProcessTrend& p = processes_[row.pid];
    p.pid = row.pid;
    p.traced = true;  // snapshot rows are the tracker's: its allocator is probed
    if (row.comm) p.comm = *row.comm;
    p.heap.push_back({now, row.outstanding_bytes});
    trim(p.heap, now);
    if (row.rss_anon_bytes) {
      p.rss_anon.push_back({now, *row.rss_anon_bytes});
      trim(p.rss_anon, now);
    }
    if (row.cgroup) {
      p.cgroup = row.cgroup->path;
      seen.emplace(row.cgroup->path, &*row.cgroup);
    }
  }
  for (const auto& [path, memory] : seen) {
    auto& points = cgroups_[path];
    points.push_back({now, *memory});
    if (now > window_ns_) drop_before(points, now - window_ns_, &CgroupPoint::time_unix_ns);
  }
}

OomHistory HistoryBook::history(const OomFacts& facts) const {
  OomHistory h;
  h.recording_since_unix_ns = first_unix_ns_;
  const std::optional<std::string> domain = facts.domain_cgroup ? facts.domain_cgroup : facts.victim_cgroup;
  for (const auto& [pid, p] : processes_) {
    const bool member = domain && p.cgroup && inside(*p.cgroup, *domain);
    if (pid == facts.victim.pid || member) h.processes.push_back(p);
  }
  if (domain) {
    if (auto it = cgroups_.find(*domain); it != cgroups_.end()) h.domain = it->second;
    else if (facts.victim_cgroup)
      if (auto own = cgroups_.find(*facts.victim_cgroup); own != cgroups_.end()) h.domain = own->second;
  }
  return h;
}

}  // namespace memsight::core
