#include "oom_explain.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace memsight::core {
namespace {

std::string mib(uint64_t bytes) {
  char text[32];
  snprintf(text, sizeof(text), "%.0f MiB", std::round(static_cast<double>(bytes) / (1 << 20)));
  return text;
}

// Rule 1 of diagnosis.md: memory that is not heap (shmem, kernel, sockets, page cache) makes at least
// half of the domain's usage. Returns the subtype: the largest part.
std::optional<std::string> non_heap_part(const CgroupMemory& m, uint64_t& non_heap_bytes) {
  if (!m.usage_bytes || *m.usage_bytes == 0) return std::nullopt;
  const std::vector<std::pair<const char*, uint64_t>> parts = {
      {"shmem", m.shmem_bytes.value_or(0)},
      {"kernel", m.kernel_bytes.value_or(0) + m.sock_bytes.value_or(0)},
      // v1's "cache" holds shmem too: count only the rest as page cache.
      {"page_cache", m.file_bytes.value_or(0) - std::min(m.file_bytes.value_or(0), m.shmem_bytes.value_or(0))}};
  non_heap_bytes = 0;
  for (const auto& [name, bytes] : parts) non_heap_bytes += bytes;
  if (2 * non_heap_bytes < *m.usage_bytes) return std::nullopt;
  return std::max_element(parts.begin(), parts.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
}

std::string where(const OomFacts& f) {
  if (f.domain_kind == "memcg" && f.domain_cgroup) {
    std::string limit = f.domain_memory && f.domain_memory->limit_bytes ? mib(*f.domain_memory->limit_bytes) : "?";
    return "cgroup " + *f.domain_cgroup + " (limit " + limit + ")";
  }
  return f.domain_kind == "global" ? "the whole machine" : "domain " + f.domain_kind;
}

}  // namespace

OomExplanation explain_kill(const OomFacts& f) {
  OomExplanation e;
  const std::string victim = "pid " + std::to_string(f.victim.pid) + " \"" + f.victim.comm + "\"";
  const std::string anon = f.victim.anon_rss_bytes ? mib(*f.victim.anon_rss_bytes) : "unknown";
  uint64_t non_heap = 0;
  if (f.domain_memory) {
    if (auto part = non_heap_part(*f.domain_memory, non_heap)) {
      e.verdict = "non_heap";
      e.subtype = *part;
      // The cgroup's own accounting says it; history would only add when it grew.
      e.confidence = 4 * non_heap >= 3 * f.domain_memory->usage_bytes.value_or(0) ? "high" : "medium";
      e.summary = "Verdict: NOT HEAP MEMORY (" + *part + "). " + victim + " was killed in " + where(f) + ", where " +
                  mib(non_heap) + " of the " + mib(*f.domain_memory->usage_bytes) +
                  " in use (cgroup) were shmem, kernel or page cache, not heap; the victim's anon RSS was " + anon +
                  " (kernel). Look at what fills " + *part + " (tmpfs files, sockets, caches), not at the heap.";
      return e;
    }
  }
  e.summary = "Verdict: INSUFFICIENT DATA. " + victim + " was killed in " + where(f) + " with " + anon +
              " of anon RSS (kernel); the trigger was pid " + std::to_string(f.victim.trigger_pid) + " \"" +
              f.victim.trigger_comm + "\". memsight had no history of it: run `memsight record` on the service to "
              "tell a leak from a burst or a limit set too small.";
  return e;
}

}  // namespace memsight::core
