// memsight: tells a memory leak from an overflow on live Linux processes.
#include <fmt/format.h>

#include "cli/demo_command.hpp"
#include "cli/explain_command.hpp"
#include "cli/oom_command.hpp"
#include "cli/options.hpp"
#include "cli/record_command.hpp"
#include "cli/trace_command.hpp"

int main(int argc, char** argv) {
  using memsight::cli::Invocation;
  auto inv = memsight::cli::parse_command_line(std::vector<std::string>(argv, argv + argc));
  if (!inv) {
    fmt::print(stderr, "memsight: {}\n", inv.error().message);
    return static_cast<int>(inv.error().code);
  }
  switch (inv->kind) {
    case Invocation::Kind::kInfo: fmt::print("{}\n", inv->info); return 0;
    case Invocation::Kind::kDemo: return memsight::cli::run_demo();
    case Invocation::Kind::kTrace: return memsight::cli::run_trace(inv->trace);
    case Invocation::Kind::kRecord: return memsight::cli::run_record(inv->record);
    case Invocation::Kind::kReport: return memsight::cli::run_report(inv->report);
    case Invocation::Kind::kOom: return memsight::cli::run_oom(inv->oom);
    case Invocation::Kind::kExplain: return memsight::cli::run_explain(inv->explain);
  }
  return 1;
}
