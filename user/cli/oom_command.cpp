// oom: the OOM watcher's reports become facts, the facts an explanation, printed as each kill happens.
#include "oom_command.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <ctime>
#include <fmt/format.h>

#include "attach/clock.hpp"
#include "attach/oom_watcher.hpp"
#include "attach/preflight.hpp"
#include "cli/oom_facts.hpp"
#include "cli/output.hpp"
#include "core/kmsg_oom.hpp"
#include "report/oom_report.hpp"
#include "store/store.hpp"

namespace memsight::cli {
namespace {
int signal_fd() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  return signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

}  // namespace

int run_oom(const OomOptions& options) {
  if (auto ok = attach::check_privileges(); !ok) return report_error(ok.error());
  if (auto ok = attach::check_kernel(); !ok) return report_error(ok.error());
  std::unique_ptr<store::Recorder> recorder;
  uint64_t next_episode = 1;
  if (options.db) {
    auto opened = store::Recorder::open(*options.db, store::Retention{});
    if (!opened) return report_error(opened.error());
    recorder = std::move(*opened);
    auto first = recorder->next_episode();
    if (!first) return report_error(first.error());
    next_episode = *first;
  }
  auto watcher = attach::OomWatcher::open();
  if (!watcher) return report_error(watcher.error());
  for (const auto& note : (*watcher)->notes()) fmt::print(stderr, "memsight: note: {}\n", note);
  const int signals = signal_fd();
  fmt::print(stderr, "memsight: watching OOM kills on this host through {}; Ctrl-C stops\n", (*watcher)->program());
  core::EpisodeGrouper episodes;
  for (;;) {
    pollfd fds[] = {{(*watcher)->fd(), POLLIN, 0}, {(*watcher)->kmsg_fd(), POLLIN, 0}, {signals, POLLIN, 0}};
    poll(fds, 3, 100);  // also a tick: victims waiting for their log lines are released on time
    signalfd_siginfo info;
    if (read(signals, &info, sizeof(info)) == sizeof(info)) break;
    auto reports = (*watcher)->poll(0);
    if (!reports) return report_error(reports.error());
    for (const auto& r : *reports) {
      const core::OomFacts facts = kill_facts(r, next_episode - 1 + episodes.add(r.victim));
      const core::OomExplanation why = core::explain_kill(facts);
      const std::string json = report::render_oom_json(facts, why), human = report::render_oom_text(facts, why);
      if (recorder)
        if (auto ok = recorder->write_episode({facts.episode, facts.time_unix_ns, "oom_kill", facts.victim.pid,
                                               why.verdict, json, human});
            !ok)
          return report_error(ok.error());
      const std::string text = (options.json ? json : human) + "\n";
      if (auto ok = write_all(stdout, text); !ok) return report_error(ok.error());
    }
    episodes.poll(attach::monotonic_ns());
  }
  const auto l = (*watcher)->losses();
  fmt::print(stderr, "memsight: {} OOM kills seen; lost: {} (ring full), {} kernel-log records\n", l.seen,
             l.ringbuf_full + l.rejected, l.kmsg_overwritten);
  close(signals);
  return 0;
}

}  // namespace memsight::cli
