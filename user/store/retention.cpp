#include <fmt/format.h>

#include <charconv>

#include "store.hpp"

namespace memsight::store {

Result<Retention> Retention::parse(std::string_view text) {
  const auto bad = [&] {
    return fail(ExitCode::kUsage, fmt::format("--retention '{}': expected a positive duration such as 3600 "
                                              "(seconds), 90m, 48h or 2d",
                                              text));
  };
  uint64_t count = 0;
  const char* end = text.data() + text.size();
  auto [next, ec] = std::from_chars(text.data(), end, count);
  if (ec != std::errc() || count == 0) return bad();
  uint64_t unit_s = 1;
  const std::string_view unit(next, static_cast<size_t>(end - next));
  if (unit == "m")
    unit_s = 60;
  else if (unit == "h")
    unit_s = 3600;
  else if (unit == "d")
    unit_s = 86400;
  else if (!unit.empty() && unit != "s")
    return bad();
  if (count > UINT64_MAX / 1'000'000'000 / unit_s) return bad();  // the total must fit in nanoseconds
  Retention r;
  r.total_s = count * unit_s;
  return r;
}

Result<void> Retention::validate() const {
  const auto bad = [](std::string why) { return fail(ExitCode::kUsage, "retention tiers: " + why); };
  if (tiers.empty()) return bad("at least one tier is needed");
  if (total_s == 0) return bad("the total must be positive");
  for (size_t i = 0; i < tiers.size(); ++i) {
    const Tier& t = tiers[i];
    if (t.resolution_s == 0 || t.detail_s == 0 || t.detail_s % t.resolution_s != 0)
      return bad(fmt::format("tier {}: detail_s must be a positive multiple of resolution_s", i));
    if (i == 0) continue;
    const Tier& prev = tiers[i - 1];
    if (t.resolution_s % prev.resolution_s != 0 || t.resolution_s <= prev.resolution_s)
      return bad(fmt::format("tier {}: resolution_s must be a larger multiple of tier {}'s", i, i - 1));
    if (i + 1 < tiers.size() && t.until_s <= prev.until_s)
      return bad(fmt::format("tier {}: until_s must be larger than tier {}'s", i, i - 1));
  }
  return {};
}

}  // namespace memsight::store
