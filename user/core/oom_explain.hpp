// Explaining one OOM kill (diagnosis.md): the facts gathered at the kill in, a verdict with its
// evidence and a plain-words summary out. This first version has no recorded history to consult, so it
// applies the rules the facts at the kill can decide (non-heap memory filling the domain) and says
// `insufficient_data` otherwise, with the kernel's and the cgroup's facts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "oom_event.hpp"
#include "snapshot.hpp"

namespace memsight::core {

// What was known at the kill; every part may be missing.
struct OomFacts {
  uint64_t episode = 0;
  uint64_t time_unix_ns = 0;
  OomVictim victim;
  std::optional<std::string> victim_cgroup;  // path
  std::string domain_kind = "unknown";       // memcg | global | cpuset | mempolicy | unknown
  std::optional<std::string> domain_cgroup;  // the cgroup whose limit was hit (memcg kills)
  std::optional<CgroupMemory> domain_memory;  // its accounting, read at the kill
};

struct OomExplanation {
  std::string verdict = "insufficient_data";  // leak | burst | ... (architecture.md)
  std::optional<std::string> subtype;         // shmem | kernel | page_cache | ...
  std::string confidence = "low";             // high | medium | low
  std::string summary;                        // one paragraph, verdict first
  std::optional<uint64_t> traced_heap_bytes;  // empty: the victim was not traced
  std::optional<double> explained_fraction;   // traced heap / anon RSS
};

OomExplanation explain_kill(const OomFacts& facts);

}  // namespace memsight::core
