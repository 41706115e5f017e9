#include "attach/trace_options.hpp"

#include <bpf/libbpf.h>

#include <algorithm>

namespace memsight::attach {

void size_shared_maps(const TraceOptions& options, const SharedMaps& maps) {
  bpf_map__set_max_entries(maps.events, options.ring_bytes);
  bpf_map__set_max_entries(maps.seen_stacks, options.stack_cache);
  bpf_map__set_max_entries(maps.unwind_rows, options.unwind_rows);
  bpf_map__set_max_entries(maps.unwind_modules, options.unwind_files);
}

uint32_t wake_threshold(const TraceOptions& options) { return std::min(options.wake_bytes, options.ring_bytes / 8); }

}  // namespace memsight::attach
