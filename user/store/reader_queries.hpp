// The queries behind Reader, each run inside the caller's read transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "core/snapshot.hpp"
#include "rows.hpp"
#include "sqlite.hpp"
#include "store.hpp"

namespace memsight::store {

// The snapshot's moment and the start of its window: (from, to].
struct Window {
  IntervalRef to;
  std::optional<IntervalRef> from;  // growth is measured from its state; empty: no growth
  int64_t counts_after = 0;         // counts add up the rows of intervals with a larger id (0: all)
};

Result<Window> resolve_window(Db& db, const TimeRange& range);
// time, monotonic time and losses of the interval.
Result<void> read_interval(Db& db, const IntervalRef& at, core::Snapshot& snap);
Result<std::vector<core::ProcessRow>> read_processes(Db& db, int64_t interval, std::optional<uint32_t> pid);
Result<std::vector<core::StackRow>> read_stacks(Db& db, const Window& window, std::optional<uint32_t> pid);
Result<std::vector<SeriesPoint>> read_series(Db& db, uint32_t pid, uint64_t stack_id, const TimeRange& range);

}  // namespace memsight::store
