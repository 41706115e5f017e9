// /proc/PID/maps text (what a process, or a container's /proc, shows) through parse_maps. Checks the
// documented results: mappings sorted by start, each a non-empty range, and find() answering only with
// a mapping that holds the address.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/proc_maps.hpp"
#include "fuzz_input.hpp"

using namespace memsight;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const core::ParsedMaps maps = core::parse_maps(text);
  for (size_t i = 0; i < maps.mappings.size(); ++i) {
    const core::Mapping& m = maps.mappings[i];
    fuzz::require(m.start < m.end, "an empty or inverted mapping");
    fuzz::require(i == 0 || maps.mappings[i - 1].start <= m.start, "mappings not sorted by start");
    (void)m.display_path();
    (void)m.file_backed();
    for (uint64_t a : {m.start, m.end - 1, m.end, m.start + (m.end - m.start) / 2}) {
      const core::Mapping* found = maps.find(a);
      fuzz::require(found == nullptr || found->contains(a), "find() gave a mapping without the address");
    }
  }
  for (uint64_t a : {uint64_t{0}, uint64_t{0x400000}, ~uint64_t{0}}) {
    const core::Mapping* found = maps.find(a);
    fuzz::require(found == nullptr || found->contains(a), "find() gave a mapping without the address");
  }
  return 0;
}
