// The facts of one OOM kill or failed allocation, gathered from what the attach layer delivered:
// shared by `oom` (no history) and the record session (with history).
#pragma once

#include <cstdint>

#include "attach/oom_watcher.hpp"
#include "core/alloc_failure.hpp"
#include "core/oom_explain.hpp"

namespace memsight::cli {

// The victim from BPF, the domain from the kernel log (without it, a kill whose cgroup sat at its
// limit is taken as that cgroup's), the accounting read at the kill.
core::OomFacts kill_facts(const attach::OomReport& report, uint64_t episode);

// A failed allocation of a live process: its limits from BPF, the host's commit accounting, its RSS
// and cgroup read now, and which limit refused the request. The stack is the caller's to add.
core::OomFacts failure_facts(const core::AllocFailure& failure, uint64_t episode, const std::string& comm);

}  // namespace memsight::cli
