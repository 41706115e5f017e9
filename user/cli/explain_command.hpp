#pragma once

#include "cli/options.hpp"

namespace memsight::cli {

// Prints the episodes stored in a database, text or memsight.oom/1 JSON lines.
int run_explain(const ExplainOptions& options);

}  // namespace memsight::cli
