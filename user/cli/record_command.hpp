#pragma once

#include "cli/options.hpp"

namespace memsight::cli {

// `memsight record`: trace into a database (and /metrics). Returns the exit code, having printed any error.
int run_record(const RecordOptions& options);

// `memsight report`: read a database in one of the formats.
int run_report(const ReportOptions& options);

}  // namespace memsight::cli
