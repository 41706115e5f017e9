// Facts about a live process read from /proc. Each is empty once the process is gone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/oom_explain.hpp"

namespace memsight::attach {

std::optional<std::string> read_comm(uint32_t pid);
std::optional<uint64_t> read_rss_anon_bytes(uint32_t pid);  // RssAnon of /proc/PID/status
std::optional<std::string> read_file(const std::string& path);
// The host's overcommit policy and commit accounting (/proc/sys/vm, /proc/meminfo): what may have
// refused a failed allocation.
void read_commit_limits(core::LimitFacts& into);

}  // namespace memsight::attach
