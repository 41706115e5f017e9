#include "cgroup_text.hpp"

#include <cctype>
#include <charconv>
#include <vector>

namespace memsight::core {
namespace {

// The lines of `text`, without their ends.
std::vector<std::string_view> lines(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    out.push_back(text.substr(0, eol));
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
  }
  return out;
}

std::vector<std::string_view> fields(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const size_t at = line.find(sep, start);
    out.push_back(line.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

std::optional<uint64_t> number(std::string_view text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n')) text.remove_suffix(1);
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

}  // namespace

CgroupPlaces parse_proc_cgroup(std::string_view text) {
  CgroupPlaces out;
  for (auto line : lines(text)) {
    const auto f = fields(line, ':');
    if (f.size() < 3) continue;
    const std::string path(line.substr(f[0].size() + f[1].size() + 2));  // paths may hold ':'
    if (f[0] == "0" && f[1].empty()) out.v2 = path;
    for (auto controller : fields(f[1], ','))
      if (controller == "memory") out.v1_memory = path;
  }
  return out;
}

CgroupPlaces parse_cgroup_mounts(std::string_view mountinfo) {
  CgroupPlaces out;
  for (auto line : lines(mountinfo)) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS"
    const size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    const auto before = fields(line.substr(0, dash), ' ');
    const auto after = fields(line.substr(dash + 3), ' ');
    if (before.size() < 5 || after.size() < 3) continue;
    const std::string mount(before[4]);
    if (after[0] == "cgroup2") out.v2 = mount;
    if (after[0] == "cgroup")
      for (auto option : fields(after[2], ','))
        if (option == "memory") out.v1_memory = mount;
  }
  return out;
}

void parse_memory_stat(std::string_view text, bool v2, CgroupMemory& into) {
  std::optional<uint64_t> slab, stack, pagetables;
  for (auto line : lines(text)) {
    const size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    const auto key = line.substr(0, space);
    const auto value = number(line.substr(space + 1));
    if (!value) continue;
    if (v2) {
      if (key == "anon") into.anon_bytes = value;
      else if (key == "file") into.file_bytes = value;
      else if (key == "shmem") into.shmem_bytes = value;
      else if (key == "kernel") into.kernel_bytes = value;
      else if (key == "sock") into.sock_bytes = value;
      else if (key == "slab") slab = value;
      else if (key == "kernel_stack") stack = value;
      else if (key == "pagetables") pagetables = value;
    } else {
      if (key == "total_rss") into.anon_bytes = value;
      else if (key == "total_cache") into.file_bytes = value;
      else if (key == "total_shmem") into.shmem_bytes = value;
    }
  }
  // Kernels before 5.18 have no "kernel" line: its main parts add up to it.
  if (v2 && !into.kernel_bytes && (slab || stack || pagetables))
    into.kernel_bytes = slab.value_or(0) + stack.value_or(0) + pagetables.value_or(0);
}

std::optional<uint64_t> parse_limit(std::string_view text) {
  const auto v = number(text);
  if (!v || *v >= (uint64_t{1} << 60)) return std::nullopt;  // "max", or v1's PAGE_COUNTER_MAX in bytes
  return v;
}

std::optional<std::string> container_id_of(std::string_view cgroup_path) {
  constexpr size_t kIdDigits = 64;
  std::optional<std::string> found;
  size_t run = 0;  // hex digits in a row, ending at i
  for (size_t i = 0; i <= cgroup_path.size(); ++i) {
    const char c = i < cgroup_path.size() ? cgroup_path[i] : '/';
    if (std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(static_cast<unsigned char>(c))) {
      ++run;
      continue;
    }
    if (run == kIdDigits) found = std::string(cgroup_path.substr(i - run, run));  // the innermost wins
    run = 0;
  }
  return found;
}

}  // namespace memsight::core
