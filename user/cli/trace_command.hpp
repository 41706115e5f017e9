#pragma once

#include "cli/options.hpp"

namespace memsight::cli {

// Runs `memsight trace`; returns the process exit code (architecture.md), having printed any error.
int run_trace(const TraceOptions& options);

// Runs `memsight demo`: the bundled leaking workload traced for about 10 s.


}  // namespace memsight::cli
