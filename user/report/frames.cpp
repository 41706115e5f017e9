#include "report.hpp"

#include <fmt/format.h>

#include <ctime>

namespace memsight::report {

void resolve_row(core::StackRow& row, core::SymbolSource& symbols) {
  row.symbols.clear();
  for (size_t i = 0; i < row.frames.size(); ++i) {
    const auto kind = i == 0 ? core::AddressKind::kExact : core::AddressKind::kReturn;
    for (core::Frame& f : symbols.describe(row.pid, row.frames[i], kind)) row.symbols.push_back(std::move(f));
  }
}

void resolve_frames(core::Snapshot& snap, core::SymbolSource& symbols) {
  for (auto& row : snap.stacks) resolve_row(row, symbols);
}

std::string local_time(uint64_t unix_ns, const char* format) {
  const time_t t = static_cast<time_t>(unix_ns / 1'000'000'000);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[64];
  return strftime(buf, sizeof(buf), format, &tm) ? buf : "";
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
