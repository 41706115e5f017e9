// record: the trace session with a sink that writes each interval to the store and publishes
// Prometheus text; compaction (downsampling, retention) runs once a minute.
#include "record_command.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "attach/clock.hpp"
#include "cli/metrics_server.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "report/encoders.hpp"
#include "report/oom_report.hpp"
#include "report/report.hpp"
#include "store/store.hpp"

namespace memsight::cli {
namespace {

constexpr uint64_t kCompactEveryNs = 60'000'000'000;

class RecordOutput final : public SnapshotSink {
 public:
  RecordOutput(const RecordOptions& options, store::Recorder& recorder, MetricsServer* metrics)
      : options_(options), recorder_(recorder), metrics_(metrics), progress_every_(isatty(2) ? 10 : 60) {}

  void attach_session(const Session& session) { session_ = &session; }

  Result<void> on_snapshot(core::Snapshot& snap, bool final) override {
    if (auto ok = recorder_.write(snap, {options_.session.interval_s, mode_name(options_.session), final}); !ok) return ok;
    ++written_;
    if (snap.time_unix_ns >= last_compact_ns_ + kCompactEveryNs || final) {
      if (auto ok = recorder_.compact(snap.time_unix_ns); !ok) return ok;
      last_compact_ns_ = snap.time_unix_ns;
    }
    if (metrics_) metrics_->publish(report::render_prometheus(snap, extras()));
    if (final || written_ % progress_every_ == 0) progress(snap, final);
    return {};
  }

  // Stored first (the explanation is what a reader after the kill needs), then shown.
  Result<void> on_episode(const core::OomFacts& facts, const core::OomExplanation& why) override {
    const std::string text = report::render_oom_text(facts, why);
    store::EpisodeRow row{facts.episode,  facts.time_unix_ns, facts.failure ? "alloc_failure" : "oom_kill",
                          facts.victim.pid, why.verdict, report::render_oom_json(facts, why), text};
    if (auto ok = recorder_.write_episode(row); !ok) return ok;
    const double after_ms = static_cast<double>(attach::realtime_ns() - std::min(attach::realtime_ns(), facts.time_unix_ns)) / 1e6;
    fmt::print(stderr, "memsight: {} of pid {} explained and stored as episode {}, {:.0f} ms after it happened\n",
               facts.failure ? "failed allocation" : "OOM kill", facts.victim.pid, facts.episode, after_ms);
    return write_all(stdout, text + "\n");
  }

 private:
  report::MetricsExtras extras() const {
    report::MetricsExtras e;
    if (session_) {
      const SessionStats s = session_->stats();
      e.recorder = report::RecorderStats{s.records, s.rejected, written_};
    }
    return e;
  }

  void progress(const core::Snapshot& snap, bool final) const {
    // The database and its write-ahead log (where the newest intervals are until a checkpoint).
    double bytes = 0;
    for (const char* suffix : {"", "-wal"}) {
      struct stat st {};
      if (stat((options_.db + suffix).c_str(), &st) == 0) bytes += static_cast<double>(st.st_size);
    }
    fmt::print(stderr, "memsight: {} {} intervals, {} stacks, {} processes; {} is {}{}\n",
               final ? "recorded" : "recording:", written_, snap.stacks.size(), snap.processes.size(), options_.db,
               report::human_bytes(bytes), final ? "" : " (Ctrl-C stops)");
  }

  const RecordOptions& options_;
  store::Recorder& recorder_;
  MetricsServer* metrics_;
  const Session* session_ = nullptr;
  uint64_t written_ = 0;
  uint64_t last_compact_ns_ = 0;
  uint64_t progress_every_;  // intervals between progress lines
};

}  // namespace

int run_record(const RecordOptions& options) {
  auto retention = store::Retention::parse(options.retention);
  if (!retention) return report_error(retention.error());
  auto recorder = store::Recorder::open(options.db, *retention);
  if (!recorder) return report_error(recorder.error());
  std::unique_ptr<MetricsServer> metrics;
  if (options.metrics) {
    auto started = MetricsServer::start(*options.metrics);
    if (!started) return report_error(started.error());
    metrics = std::move(*started);
    fmt::print(stderr, "memsight: serving Prometheus metrics at http://{}/metrics\n", metrics->endpoint());
  }
  RecordOutput sink(options, **recorder, metrics.get());
  Session session(options.session, sink);
  sink.attach_session(session);
  auto first = (*recorder)->next_episode();
  if (!first) return report_error(first.error());
  session.number_episodes_from(*first);
  auto result = session.start().and_then([&] { return session.run(); });
  return result ? 0 : report_error(result.error());
}

}  // namespace memsight::cli
