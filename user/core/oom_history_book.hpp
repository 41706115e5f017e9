// The recorder's memory of the last hour, kept for the moment an OOM kill or a failed allocation needs
// explaining: each process's traced heap and anon RSS, and each memory cgroup's accounting, one point
// per snapshot. Pure: fed the snapshots `record` takes anyway, asked for one domain's history.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "oom_explain.hpp"
#include "oom_history.hpp"
#include "snapshot.hpp"

namespace memsight::core {

class HistoryBook {
 public:
  // Keeps `window_ns` of history (diagnosis.md's W: up to 60 min).
  explicit HistoryBook(uint64_t window_ns = 3600ull * 1'000'000'000) : window_ns_(window_ns) {}

  // One snapshot whose processes carry comm, rss and cgroup, at snap.time_unix_ns.
  void observe(const Snapshot& snap);

  // The history of the kill's domain (the cgroup whose limit was hit, else the victim's): the victim and
  // every process seen in that cgroup or below it, and the cgroup's points. Stacks are left to the
  // caller (the tracker has them).
  OomHistory history(const OomFacts& facts) const;

 private:
  void trim(std::vector<Sample>& series, uint64_t now) const;

  uint64_t window_ns_;
  uint64_t first_unix_ns_ = 0;
  std::map<uint32_t, ProcessTrend> processes_;
  std::map<std::string, std::vector<CgroupPoint>> cgroups_;
};

}  // namespace memsight::core
