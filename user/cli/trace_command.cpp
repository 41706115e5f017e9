#include "trace_command.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "cli/output.hpp"
#include "cli/session.hpp"
#include "report/oom_report.hpp"
#include "report/report.hpp"

namespace memsight::cli {
namespace {

// trace's sink: a text table (redrawn in place on a terminal) or JSON Lines.
class TraceOutput final : public SnapshotSink {
 public:
  TraceOutput(const TraceOptions& options, FILE* out)
      : options_(options), out_(out), interactive_(!options.json && isatty(fileno(out))) {}

  Result<void> on_snapshot(core::Snapshot& snap, bool final) override {
    const report::SnapshotMeta meta{options_.session.interval_s, final, mode_name(options_.session)};
    std::string text = options_.json ? report::render_json(snap, meta) + "\n" : report::render_text(snap, meta);
    if (interactive_ && !final) text = "\x1b[H\x1b[2J" + text;  // redraw the table in place
    if (!options_.json && !interactive_) text += "\n";
    return write_all(out_, text);
  }

  // A target's failed allocation: explained on stderr, beside the progress messages (the output stays
  // snapshots only).
  Result<void> on_episode(const core::OomFacts& facts, const core::OomExplanation& why) override {
    return write_all(stderr, "memsight: " + report::render_oom_text(facts, why));
  }

 private:
  const TraceOptions& options_;
  FILE* out_;
  bool interactive_;
};

}  // namespace

int run_trace(const TraceOptions& options) {
  auto out = open_output(options.output);
  if (!out) return report_error(out.error());
  TraceOutput sink(options, out->get());
  Session session(options.session, sink);
  auto result = session.start().and_then([&] { return session.run(); });
  return result ? 0 : report_error(result.error());
}

}  // namespace memsight::cli
