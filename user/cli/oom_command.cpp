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
#include "cli/output.hpp"
#include "core/kmsg_oom.hpp"
#include "report/oom_report.hpp"

namespace memsight::cli {
namespace {
// The facts of one kill: the victim from BPF, the domain from the kernel log (without it, a kill whose
// cgroup sat at its limit is taken as that cgroup's), the accounting read at the kill.
core::OomFacts facts_of(const attach::OomReport& r, uint64_t episode) {
  core::OomFacts f;
  f.episode = episode;
  f.time_unix_ns = attach::realtime_ns() - (attach::monotonic_ns() - r.victim.time_ns);
  f.victim = r.victim;
  f.victim_cgroup = r.cgroup.path;
  const auto* summary = r.kernel_log && r.kernel_log->summary ? &*r.kernel_log->summary : nullptr;
  const bool memcg_kill = r.kernel_log && r.kernel_log->killed && r.kernel_log->killed->memcg;
  if (summary) f.domain_kind = std::string(core::oom_domain_kind(summary->constraint));
  else if (memcg_kill) f.domain_kind = "memcg";
  if (f.domain_kind == "memcg") f.domain_cgroup = summary && summary->oom_memcg ? summary->oom_memcg : r.cgroup.path;
  f.domain_memory = r.domain ? r.domain->memory : r.cgroup.memory;
  return f;
}

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
      const core::OomFacts facts = facts_of(r, episodes.add(r.victim));
      const core::OomExplanation why = core::explain_kill(facts);
      const std::string text = options.json ? report::render_oom_json(facts, why) + "\n"
                                            : report::render_oom_text(facts, why) + "\n";
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
