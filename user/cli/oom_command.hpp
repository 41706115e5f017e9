#pragma once

#include "cli/options.hpp"

namespace memsight::cli {

// `memsight oom`: watch every OOM kill on the host and explain each as it happens. Runs until Ctrl-C.
int run_oom(const OomOptions& options);

}  // namespace memsight::cli
