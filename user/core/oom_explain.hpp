// Explaining one OOM kill, or one allocation that found no memory (diagnosis.md): the facts of the
// moment and, when memsight recorded the process, its history in; a verdict with its evidence, the
// stacks it rests on and a plain-words summary out.
//
// The rules run in diagnosis.md's order; the first that matches is the verdict, the others that
// match too are kept as secondary factors (a leak whose last straw was a burst says both). Without
// history only the facts at the kill can speak: non-heap memory filling the cgroup, or
// `insufficient_data` with the kernel's and the cgroup's numbers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "oom_event.hpp"
#include "oom_history.hpp"
#include "snapshot.hpp"

namespace memsight::core {

// An allocation that returned NULL or MAP_FAILED: the other face of an overflow.
struct FailureFacts {
  uint16_t fn = 0;         // MS_FN_*
  uint64_t size = 0;       // bytes requested
  std::string refused_by;  // "RLIMIT_AS", "RLIMIT_DATA", "overcommit", "address space" or "unknown"
  std::optional<uint64_t> limit_bytes;  // the limit that refused it, when one did
  uint64_t in_use_bytes = 0;            // what that limit counted before the request
  std::optional<StackRow> stack;        // the failing call's stack
};

// What was known at the kill; every part may be missing.
struct OomFacts {
  uint64_t episode = 0;
  uint64_t time_unix_ns = 0;
  OomVictim victim;  // for a failure: the process whose allocation failed
  std::optional<std::string> victim_cgroup;  // path
  std::string domain_kind = "unknown";       // memcg | global | cpuset | mempolicy | unknown
  std::optional<std::string> domain_cgroup;  // the cgroup whose limit was hit (memcg kills)
  std::optional<CgroupMemory> domain_memory;  // its accounting, read at the kill
  std::optional<FailureFacts> failure;        // set: not a kill but a failed allocation
};

struct ExplainedStack {
  std::string role;  // "leak", "burst", "backlog", "grower", "failed_call", "largest"
  StackRow row;
};

struct OomExplanation {
  std::string verdict = "insufficient_data";  // leak | burst | ... (architecture.md)
  std::optional<std::string> subtype;         // single_huge | recursion | shmem | kernel | ...
  std::string confidence = "low";             // high | medium | low
  std::string summary;                        // one paragraph, verdict first
  std::optional<uint64_t> traced_heap_bytes;  // empty: the victim was not traced
  std::optional<double> explained_fraction;   // traced heap / anon RSS, at most 1
  std::vector<std::string> factors;           // other rules that matched, in rule order
  std::vector<ExplainedStack> stacks;         // the evidence, most important first
  std::optional<uint32_t> grower_pid;         // `others`: who grew
  std::optional<uint64_t> suggested_limit_bytes;  // `limit_too_small`
};

// `history` empty: the victim was never recorded.
OomExplanation explain_kill(const OomFacts& facts, const OomHistory* history = nullptr);

// Which limit refused a request of `size` bytes, from the process's limits and use at the failure
// (rlimits empty: unlimited) and the host's overcommit policy (/proc/sys/vm/overcommit_memory, and
// /proc/meminfo's CommitLimit and Committed_AS in bytes; empty when unread).
struct LimitFacts {
  std::optional<uint64_t> rlimit_as, rlimit_data;
  uint64_t total_vm_bytes = 0, data_vm_bytes = 0;
  std::optional<int> overcommit_mode;
  std::optional<uint64_t> commit_limit_bytes, committed_bytes, ram_and_swap_bytes;
};
void classify_refusal(const LimitFacts& limits, FailureFacts& failure);

}  // namespace memsight::core
