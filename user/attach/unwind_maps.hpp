// The walker's maps in a loaded tracing object (bpf/unwind.bpf.h): where call-frame tables are written.
#pragma once

#include <cstdint>

#include "core/unwind_sink.hpp"

struct bpf_map;

namespace memsight::attach {

// Rows of call-frame tables the walker can hold by default: 1 Mi rows, 12 MiB of kernel memory
// allocated at load. libc + libstdc++ take ~63 K rows (docs/unwinding.md).
constexpr uint32_t kDefaultUnwindRows = 1u << 20;
// Files with a table the walker can look up.
constexpr uint32_t kDefaultUnwindFiles = 4096;

class UnwindMaps final : public core::UnwindSink {
 public:
  UnwindMaps(bpf_map* rows, bpf_map* files) : rows_(rows), files_(files) {}
  uint32_t capacity_rows() const override;
  Result<void> write_rows(uint32_t first, std::span<const ms_unwind_row> rows) override;
  Result<void> add_module(const ms_unwind_file& file, const ms_unwind_module& run) override;

 private:
  bpf_map* rows_;
  bpf_map* files_;
};

}  // namespace memsight::attach
