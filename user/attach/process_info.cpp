#include "process_info.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace memsight::attach {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<std::string> read_comm(uint32_t pid) {
  auto text = read_file("/proc/" + std::to_string(pid) + "/comm");
  if (!text) return std::nullopt;
  while (!text->empty() && text->back() == '\n') text->pop_back();
  return text;
}

namespace {

// The "Key: N kB" line of a /proc file of that form (status, meminfo), in bytes.
std::optional<uint64_t> kib_field(const std::string& path, const std::string& wanted) {
  std::ifstream in(path);
  std::string key;
  while (in >> key) {
    if (key == wanted) {
      uint64_t kib = 0;
      if (in >> kib) return kib * 1024;
      return std::nullopt;
    }
    in.ignore(1 << 20, '\n');
  }
  return std::nullopt;
}

}  // namespace

std::optional<uint64_t> read_rss_anon_bytes(uint32_t pid) {
  return kib_field("/proc/" + std::to_string(pid) + "/status", "RssAnon:");
}

void read_commit_limits(core::LimitFacts& into) {
  if (auto mode = read_file("/proc/sys/vm/overcommit_memory")) into.overcommit_mode = std::atoi(mode->c_str());
  into.commit_limit_bytes = kib_field("/proc/meminfo", "CommitLimit:");
  into.committed_bytes = kib_field("/proc/meminfo", "Committed_AS:");
  const auto ram = kib_field("/proc/meminfo", "MemTotal:"), swap = kib_field("/proc/meminfo", "SwapTotal:");
  if (ram) into.ram_and_swap_bytes = *ram + swap.value_or(0);
}

}  // namespace memsight::attach
