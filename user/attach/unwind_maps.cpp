#include "unwind_maps.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <numeric>
#include <vector>

#include "attach/libbpf_log.hpp"

namespace memsight::attach {

uint32_t UnwindMaps::capacity_rows() const {
  return bpf_map__max_entries(rows_);
}

Result<void> UnwindMaps::write_rows(uint32_t first, std::span<const ms_unwind_row> rows) {
  if (rows.empty()) return {};
  // One batch per table: a syscall per row would take ~0.1 s for libc's 28 K rows.
  std::vector<uint32_t> keys(rows.size());
  std::iota(keys.begin(), keys.end(), first);
  uint32_t count = static_cast<uint32_t>(rows.size());
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  if (bpf_map_update_batch(bpf_map__fd(rows_), keys.data(), rows.data(), &count, &opts) != 0 ||
      count != rows.size())
    return tl::unexpected(libbpf_error("cannot write call-frame rows to the BPF walker", errno));
  return {};
}

Result<void> UnwindMaps::add_module(const ms_unwind_file& file, const ms_unwind_module& run) {
  if (bpf_map__update_elem(files_, &file, sizeof(file), &run, sizeof(run), BPF_ANY) != 0)
    return tl::unexpected(
        libbpf_error("cannot add a module to the BPF walker (its table of files is full?)", errno));
  return {};
}

}  // namespace memsight::attach
