#include "options.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace memsight::cli {
namespace {

constexpr const char* kTraceHelp =
    "Trace every allocation and release of live processes (exact mode) and show the bytes each call\n"
    "stack still holds. TARGET is -p PID[,PID...] or -- COMMAND [ARGS...].\n\n"
    "Examples:\n"
    "  memsight trace -p 1234                      refresh a table every 5 s until Ctrl-C\n"
    "  memsight trace -p 1234 --duration 60 --json -o leak.jsonl\n"
    "  memsight trace --min-age 30 -- ./server     only blocks alive for 30 s or more";

void add_trace_options(CLI::App& trace, TraceOptions& o, std::string& mode, std::optional<uint64_t>& sample,
                       bool& all) {
  trace.add_option("-p,--pid", o.pids, "process id(s) to attach to; repeatable, or comma separated")
      ->delimiter(',');
  trace.add_flag("--all", all, "every process on the host (needs growth mode: not available yet)");
  trace.add_option("--interval", o.interval_s, "seconds between snapshots")->capture_default_str()
      ->check(CLI::Range(0.05, 86400.0));
  trace.add_option("--duration", o.duration_s, "stop after this many seconds (default: until Ctrl-C or every "
                                               "target has exited)")
      ->check(CLI::Range(0.0, 1e9));
  trace.add_option("--top", o.top, "stacks to show, biggest first (0: all)")->capture_default_str();
  trace.add_option("--min-age", o.min_age_s, "count only blocks alive at least this many seconds")
      ->check(CLI::Range(0.0, 1e9));
  trace.add_option("--mode", mode, "exact: every allocation (growth mode is not available yet)")
      ->check(CLI::IsMember({"exact", "growth"}))->capture_default_str();
  trace.add_option("--sample-bytes", sample, "sample allocations by bytes (not available yet)");
  trace.add_flag("--json", o.json, "JSON Lines, one memsight.snapshot/1 object per snapshot");
  trace.add_option("-o,--output", o.output, "write to FILE instead of standard output");
  trace.add_option("command", o.command, "after --: the command to start and trace from its first instruction");
}

}  // namespace

Result<Invocation> parse_command_line(const std::vector<std::string>& args) {
  CLI::App app{"memsight: tells a memory leak from an overflow on live Linux processes", "memsight"};
  app.set_version_flag("--version", "memsight 0.1.0");
  app.require_subcommand(1);
  Invocation inv;
  std::string mode = "exact";
  std::optional<uint64_t> sample;
  bool all = false;
  CLI::App* trace = app.add_subcommand("trace", "exact outstanding bytes per call stack of live processes");
  trace->footer(kTraceHelp);
  add_trace_options(*trace, inv.trace, mode, sample, all);
  CLI::App* demo = app.add_subcommand("demo", "trace a bundled leaking program for 10 s and show the result");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    inv.info = app.help();
    return inv;
  } catch (const CLI::CallForVersion& e) {
    inv.info = e.what();
    return inv;
  } catch (const CLI::ParseError& e) {
    // "Call for help" from a subcommand arrives here too: its help, not the top one.
    if (e.get_exit_code() == 0) {
      inv.info = (trace->parsed() ? trace->help() : app.help());
      return inv;
    }
    return fail(ExitCode::kUsage, fmt::format("{} (see memsight {} --help)", e.what(),
                                              trace->parsed() ? "trace" : ""));
  }
  if (demo->parsed()) {
    inv.kind = Invocation::Kind::kDemo;
    return inv;
  }
  inv.kind = Invocation::Kind::kTrace;
  const TraceOptions& o = inv.trace;
  const int targets = !o.pids.empty() + all + !o.command.empty();
  if (targets != 1)
    return fail(ExitCode::kUsage, "trace needs one TARGET: -p PID[,PID...], --all, or -- COMMAND [ARGS...]");
  if (all || mode == "growth")
    return fail(ExitCode::kUsage, "--all and --mode growth are not available yet: trace named processes with "
                                  "-p PID or -- COMMAND");
  if (sample) return fail(ExitCode::kUsage, "--sample-bytes is not available yet: exact mode traces every call");
  for (uint32_t pid : o.pids)
    if (pid == 0) return fail(ExitCode::kUsage, "-p 0 is not a process id");
  return inv;
}

}  // namespace memsight::cli
