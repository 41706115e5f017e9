// The command line (architecture.md): parsed into plain values, checked, no side effects, so it
// can be tested without running anything.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace memsight::cli {

struct TraceOptions {
  std::vector<uint32_t> pids;        // -p, repeatable, comma lists
  std::vector<std::string> command;  // -- COMMAND ARGS
  double interval_s = 5.0;
  std::optional<double> duration_s;  // unset: until Ctrl-C or every target exited
  size_t top = 10;
  double min_age_s = 0;
  bool json = false;
  std::optional<std::string> output;  // -o FILE
};

struct Invocation {
  enum class Kind { kTrace, kDemo, kInfo } kind = Kind::kInfo;
  TraceOptions trace;
  std::string info;  // --help or --version text, for kInfo
};

// argv[0] is the program name. Errors carry exit code 2 and say what to type instead.
Result<Invocation> parse_command_line(const std::vector<std::string>& args);

}  // namespace memsight::cli
