#include "trace_command.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

#include "cli/output.hpp"
#include "cli/session.hpp"
#include "report/report.hpp"

namespace memsight::cli {
namespace {

// trace's sink: a text table (redrawn in place on a terminal) or JSON Lines.
class TraceOutput final : public SnapshotSink {
 public:
  TraceOutput(const TraceOptions& options, FILE* out)
      : options_(options), out_(out), interactive_(!options.json && isatty(fileno(out))) {}

  Result<void> on_snapshot(core::Snapshot& snap, bool final) override {
    const report::SnapshotMeta meta{options_.session.interval_s, final, "exact"};
    std::string text = options_.json ? report::render_json(snap, meta) + "\n" : report::render_text(snap, meta);
    if (interactive_ && !final) text = "\x1b[H\x1b[2J" + text;  // redraw the table in place
    if (!options_.json && !interactive_) text += "\n";
    return write_all(out_, text);
  }

 private:
  const TraceOptions& options_;
  FILE* out_;
  bool interactive_;
};

// The bundled workload: built next to memsight (build/tools/workloads) or installed beside it.
std::optional<std::string> find_workload() {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  for (const auto& candidate : {self / "ms_workload", self / "../tools/workloads/ms_workload",
                                self / "../../tools/workloads/ms_workload"}) {
    if (access(candidate.c_str(), X_OK) == 0) return std::filesystem::weakly_canonical(candidate, ec).string();
  }
  return std::nullopt;
}

}  // namespace

int run_trace(const TraceOptions& options) {
  auto out = open_output(options.output);
  if (!out) return report_error(out.error());
  TraceOutput sink(options, out->get());
  Session session(options.session, sink);
  auto result = session.start().and_then([&] { return session.run(); });
  return result ? 0 : report_error(result.error());
}

int run_demo() {
  const auto workload = find_workload();
  if (!workload)
    return report_error(Error{ExitCode::kRuntime, "the bundled workload ms_workload is not built: run tools/run"});
  fmt::print(stderr,
             "memsight demo: tracing a bundled program for 10 s. It leaks 64 KiB/s from leak_block, keeps a\n"
             "bounded cache and churns temporary buffers; watch which stacks keep growing.\n\n");
  TraceOptions o;
  o.session.command = {*workload, "--seconds", "10", "--leak", "1000", "--leak-size", "640", "--cache", "64",
                       "--cache-inserts", "5000", "--cache-size", "512", "--churn", "20000", "--churn-size", "4096"};
  o.session.interval_s = 2;
  o.session.top = 6;
  return run_trace(o);
}

}  // namespace memsight::cli
