// Where a command's output goes, and how its errors reach the user.
#pragma once

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "core/error.hpp"

namespace memsight::cli {

struct FileCloser {
  void operator()(FILE* f) const {
    if (f && f != stdout) fclose(f);
  }
};
using OutputFile = std::unique_ptr<FILE, FileCloser>;

// Standard output, or FILE created 0600 (reports are the user's data).
Result<OutputFile> open_output(const std::optional<std::string>& path);
Result<void> write_all(FILE* out, const std::string& bytes);

// Prints "memsight: MESSAGE" and returns the exit code.
int report_error(const Error& e);

}  // namespace memsight::cli
