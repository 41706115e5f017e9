#include "session.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fmt/format.h>

#include "attach/cgroup_memory.hpp"
#include "attach/clock.hpp"
#include "attach/preflight.hpp"
#include "attach/process_info.hpp"
#include "report/report.hpp"

namespace memsight::cli {

using attach::monotonic_ns;
using attach::realtime_ns;

namespace {

constexpr int kTickMs = 100;  // how often the loop drains the ring and looks for exits and signals
constexpr uint64_t kSampleNs = 1'000'000'000;  // verdict history: one sample per stack per second

uint64_t seconds_to_ns(double s) { return static_cast<uint64_t>(s * 1e9); }

std::string module_list(const std::vector<attach::AllocatorModule>& modules) {
  std::string out;
  for (const auto& m : modules) out += (out.empty() ? "" : ", ") + m.path;
  return out;
}

}  // namespace

Session::Session(const SessionOptions& options, SnapshotSink& sink) : options_(options), sink_(sink) {}

Session::~Session() {
  for (auto& w : watched_)
    if (w.pidfd >= 0) close(w.pidfd);
  if (signal_fd_ >= 0) close(signal_fd_);
}

Result<void> Session::start() {
  if (auto ok = attach::check_privileges(); !ok) return ok;
  if (auto ok = attach::check_kernel(); !ok) return ok;
  // Ctrl-C and SIGTERM end the trace with a final snapshot: taken from a signalfd in the loop.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  signal(SIGPIPE, SIG_IGN);

  auto tracer = attach::AllocTracer::open(attach::TracerOptions{}, decoder_);
  if (!tracer) return tl::unexpected(tracer.error());
  tracer_ = std::move(*tracer);
  for (const auto& note : tracer_->notes()) fmt::print(stderr, "memsight: note: {}\n", note);
  return options_.command.empty() ? attach_pids() : launch_command();
}

void Session::watch(uint32_t pid, const std::string& comm) {
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  watched_.push_back(Watched{pid, fd, fd < 0, comm});
  tracker_.add_process(pid, monotonic_ns());
}

Result<void> Session::attach_modules(uint32_t pid, const std::vector<attach::AllocatorModule>& modules) {
  for (const auto& module : modules) {
    auto notes = tracer_->attach(pid, module);
    if (!notes) return tl::unexpected(notes.error());
    for (const auto& note : *notes) fmt::print(stderr, "memsight: note: {}\n", note);
  }
  return {};
}

Result<void> Session::attach_pids() {
  for (uint32_t given : options_.pids) {
    auto target = attach::find_target(given);
    if (!target) return tl::unexpected(target.error());
    if (target->note) fmt::print(stderr, "memsight: note: {}\n", *target->note);
    const uint32_t pid = target->pid;
    watch(pid, target->comm);  // before attaching: a process that exits meanwhile is still noticed
    if (auto attached = attach_modules(pid, target->modules); !attached) return attached;
    fmt::print(stderr, "memsight: tracing pid {} ({}) through {}\n", pid, target->comm, module_list(target->modules));
  }
  return {};
}

Result<void> Session::launch_command() {
  auto executable = attach::resolve_command(options_.command.front());
  if (!executable) return tl::unexpected(executable.error());
  auto modules = attach::modules_for_command(*executable);
  if (!modules) return tl::unexpected(modules.error());
  auto launched = attach::LaunchedCommand::spawn(options_.command, *executable);
  if (!launched) return tl::unexpected(launched.error());
  command_.emplace(std::move(*launched));
  const uint32_t pid = static_cast<uint32_t>(command_->pid());
  watch(pid, std::filesystem::path(*executable).filename().string().substr(0, 15));  // as comm will say
  if (auto attached = attach_modules(pid, *modules); !attached) {
    command_->abandon();
    return attached;
  }
  if (auto released = command_->release(); !released) return released;
  fmt::print(stderr, "memsight: started {} as pid {}, tracing through {}\n", *executable, pid, module_list(*modules));
  return {};
}

bool Session::reap_exits() {
  bool all_gone = true;
  for (auto& w : watched_) {
    if (!w.exited) {
      pollfd p{w.pidfd, POLLIN, 0};
      w.exited = poll(&p, 1, 0) > 0;
      if (w.exited) {
        tracer_->drain();  // everything it wrote before exiting is in the ring by now
        tracker_.on_exit(w.pid, monotonic_ns());
        if (command_ && command_->pid() == static_cast<pid_t>(w.pid)) {
          if (auto status = command_->poll_exit())
            fmt::print(stderr, "memsight: {} {}\n", options_.command.front(), attach::describe_wait_status(*status));
        } else {
          fmt::print(stderr, "memsight: pid {} ({}) exited\n", w.pid, w.comm);
        }
      }
    }
    all_gone = all_gone && w.exited;
  }
  return all_gone;
}

Result<void> Session::emit(bool final) {
  core::Snapshot snap =
      tracker_.snapshot(monotonic_ns(), {seconds_to_ns(options_.min_age_s), options_.top, /*whole_trace=*/final});
  const attach::BpfLosses bpf = tracer_->losses();
  snap.lost.events = bpf.ringbuf_full + bpf.inflight_full + decoder_.counters().rejected();
  snap.lost.truncated_stacks = bpf.stack_truncated;
  for (auto& p : snap.processes) {
    for (const auto& w : watched_)
      if (w.pid == p.pid) p.comm = w.comm;
    if (!p.exited) {
      if (auto comm = attach::read_comm(p.pid)) p.comm = comm;
      p.rss_anon_bytes = attach::read_rss_anon_bytes(p.pid);
      p.cgroup = attach::read_cgroup_memory(p.pid);
    }
  }
  snap.time_unix_ns = realtime_ns();
  report::resolve_frames(snap, symbols_);
  return sink_.on_snapshot(snap, final);
}

SessionStats Session::stats() const {
  return SessionStats{decoder_.counters().records, decoder_.counters().rejected(), tracer_->losses(),
                      tracker_.counters()};
}

Result<void> Session::run() {
  const uint64_t start = monotonic_ns();
  const uint64_t interval = seconds_to_ns(options_.interval_s);
  const std::optional<uint64_t> stop =
      options_.duration_s ? std::optional(start + seconds_to_ns(*options_.duration_s)) : std::nullopt;
  uint64_t next = start + interval;
  uint64_t next_sample = start + kSampleNs;
  for (;;) {
    const uint64_t now = monotonic_ns();
    const uint64_t until = std::min(next, stop.value_or(next));
    const int wait_ms = now >= until ? 0 : static_cast<int>(std::min<uint64_t>((until - now) / 1'000'000, kTickMs));
    if (auto polled = tracer_->poll(wait_ms); !polled) return tl::unexpected(polled.error());
    signalfd_siginfo info;
    if (read(signal_fd_, &info, sizeof(info)) == sizeof(info)) break;
    if (reap_exits()) break;
    if (stop && monotonic_ns() >= *stop) break;
    if (monotonic_ns() >= next_sample) {
      tracker_.sample(monotonic_ns());
      next_sample += kSampleNs;
    }
    if (monotonic_ns() >= next) {
      if (auto ok = emit(false); !ok) return ok;
      next += interval;
    }
  }
  if (auto drained = tracer_->drain(); !drained) return tl::unexpected(drained.error());
  return emit(true);
}

}  // namespace memsight::cli
