#include "proc_maps.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

namespace memsight::core {
namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";

// Cuts the text before the first `sep` off `rest` and returns it; nullopt if `sep` is missing.
std::optional<std::string_view> take_until(std::string_view& rest, char sep) {
  size_t at = rest.find(sep);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view head = rest.substr(0, at);
  rest.remove_prefix(at + 1);
  return head;
}

template <typename T>
bool parse_number(std::string_view text, int base, T& out) {
  if (text.empty()) return false;
  const char* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), last, out, base);
  return ec == std::errc() && ptr == last;
}

bool valid_perms(std::string_view p) {
  return p.size() == 4 && (p[0] == 'r' || p[0] == '-') && (p[1] == 'w' || p[1] == '-') &&
         (p[2] == 'x' || p[2] == '-') && (p[3] == 'p' || p[3] == 's');
}

// One line: "START-END PERMS OFFSET MAJOR:MINOR INODE [spaces PATH]"; the path may hold spaces.
std::optional<Mapping> parse_line(std::string_view line) {
  Mapping m;
  std::string_view rest = line;
  auto start = take_until(rest, '-');
  auto end = take_until(rest, ' ');
  auto perms = take_until(rest, ' ');
  auto offset = take_until(rest, ' ');
  auto major = take_until(rest, ':');
  auto minor = take_until(rest, ' ');
  if (!start || !end || !perms || !offset || !major || !minor) return std::nullopt;
  std::string_view inode = rest;
  size_t inode_end = rest.find(' ');
  if (inode_end != std::string_view::npos) {
    inode = rest.substr(0, inode_end);
    rest.remove_prefix(inode_end);
  } else {
    rest = {};
  }
  if (!parse_number(*start, 16, m.start) || !parse_number(*end, 16, m.end) || m.start >= m.end ||
      !valid_perms(*perms) || !parse_number(*offset, 16, m.offset) ||
      !parse_number(*major, 16, m.dev_major) || !parse_number(*minor, 16, m.dev_minor) ||
      !parse_number(inode, 10, m.inode)) {
    return std::nullopt;
  }
  m.perms = std::string(*perms);
  size_t path_begin = rest.find_first_not_of(' ');
  if (path_begin != std::string_view::npos) {
    std::string_view path = rest.substr(path_begin);
    if (m.inode != 0 && path.size() > kDeletedSuffix.size() && path.ends_with(kDeletedSuffix)) {
      path.remove_suffix(kDeletedSuffix.size());
      m.deleted = true;
    }
    m.path = std::string(path);
  }
  return m;
}

}  // namespace

const Mapping* ParsedMaps::find(uint64_t address) const {
  auto after = std::upper_bound(mappings.begin(), mappings.end(), address,
                                [](uint64_t a, const Mapping& m) { return a < m.start; });
  if (after == mappings.begin()) return nullptr;
  const Mapping& candidate = *std::prev(after);
  return candidate.contains(address) ? &candidate : nullptr;
}

ParsedMaps parse_maps(std::string_view text) {
  ParsedMaps out;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    if (auto m = parse_line(line)) {
      out.mappings.push_back(std::move(*m));
    } else {
      ++out.skipped_lines;
    }
  }
  // The kernel lists mappings in address order; a hand-made or damaged text might not.
  auto by_start = [](const Mapping& a, const Mapping& b) { return a.start < b.start; };
  if (!std::is_sorted(out.mappings.begin(), out.mappings.end(), by_start)) {
    std::stable_sort(out.mappings.begin(), out.mappings.end(), by_start);
  }
  return out;
}

}  // namespace memsight::core
