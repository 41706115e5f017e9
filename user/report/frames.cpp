#include "report.hpp"

#include <fmt/format.h>

namespace memsight::report {

std::vector<core::Frame> frames_of(const core::StackRow& row, core::SymbolSource& symbols) {
  std::vector<core::Frame> out;
  for (size_t i = 0; i < row.frames.size(); ++i) {
    const uint64_t address = row.frames[i];
    const uint64_t lookup = i == 0 || address == 0 ? address : address - 1;
    for (core::Frame f : symbols.describe(row.pid, lookup)) {
      f.address = address;
      out.push_back(std::move(f));
    }
  }
  return out;
}

std::string human_bytes(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  const bool negative = bytes < 0;
  double v = negative ? -bytes : bytes;
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) v /= 1024, ++unit;
  const char* sign = negative ? "-" : "";
  if (unit == 0) return fmt::format("{}{:.0f} B", sign, v);
  return fmt::format("{}{:.{}f} {}", sign, v, v < 10 ? 2 : (v < 100 ? 1 : 0), kUnits[unit]);
}

}  // namespace memsight::report
