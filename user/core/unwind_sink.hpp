// Where call-frame tables go once built: the BPF maps of a tracer (attach/unwind_maps.hpp), or a fake
// in tests. A seam between the builder (symbolize/unwind_registry.hpp) and libbpf.
#pragma once

#include <cstdint>
#include <span>

#include "core/error.hpp"
#include "memsight/abi.h"

namespace memsight::core {

class UnwindSink {
 public:
  virtual ~UnwindSink() = default;
  // Rows the sink can hold in all: the memory cap (rows of sizeof(ms_unwind_row) bytes).
  virtual uint32_t capacity_rows() const = 0;
  // Writes rows [first, first + rows.size()). Written once per table; never moved.
  virtual Result<void> write_rows(uint32_t first, std::span<const ms_unwind_row> rows) = 0;
  // Tells the walker that code of `file` is described by `run`.
  virtual Result<void> add_module(const ms_unwind_file& file, const ms_unwind_module& run) = 0;
};

}  // namespace memsight::core
