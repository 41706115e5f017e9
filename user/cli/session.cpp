#include "session.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>
#include <fmt/format.h>

#include "attach/cgroup_memory.hpp"
#include "attach/clock.hpp"
#include "attach/hold_guard.hpp"
#include "attach/preflight.hpp"
#include "attach/process_info.hpp"
#include "cli/oom_facts.hpp"
#include "core/cgroup_text.hpp"
#include "report/report.hpp"

namespace memsight::cli {

using attach::monotonic_ns;
using attach::realtime_ns;

namespace {

constexpr int kTickMs = 100;  // how often the loop drains the ring and looks for exits and signals
constexpr uint64_t kSampleNs = 1'000'000'000;  // verdict history: one sample per stack per second
constexpr uint64_t kFailureFoldNs = 5'000'000'000;  // a process's failures this close are one episode
constexpr uint64_t kExitedKeptNs = 30'000'000'000;  // --all: how long an exited process stays shown
constexpr size_t kResolvedStacks = 32;
// An OOM can't wait for the 30 samples and 50 allocations a trace wants before it judges a stack: a
// leak of big blocks may fill a limit in seconds. Verdicts on fewer samples say so (short_history), and
// the explanation is then never of high confidence.
const core::VerdictRules kOomVerdictRules = [] {
  core::VerdictRules r;
  r.min_samples = 6;
  r.min_allocs = 8;
  return r;
}();  // stacks named for an explanation: the largest, and the newest

uint64_t seconds_to_ns(double s) { return static_cast<uint64_t>(s * 1e9); }

// Growth mode samples faults unless told otherwise: a page fault costs ~1.3 us more when its stack is
// taken and recorded, and an allocation-heavy program faults ~100,000 pages a second (docs/growth.md).
constexpr uint64_t kGrowthSampleBytes = 64 << 10;

// What exact and growth mode take from the command line alike.
void shared_tracing(const SessionOptions& options, attach::TraceOptions& out) {
  out.all = options.all;
  if (options.ring_bytes) out.ring_bytes = *options.ring_bytes;
  if (options.unwind_rows) out.unwind_rows = std::max<uint32_t>(*options.unwind_rows, 1);
}

uint64_t fault_sample_bytes(const SessionOptions& options) {
  return options.growth ? options.sample_bytes.value_or(kGrowthSampleBytes) : 0;
}

core::TrackerConfig tracker_config(const SessionOptions& options) {
  core::TrackerConfig config;
  if (options.max_blocks) config.max_live_blocks = *options.max_blocks;
  config.fault_sample_bytes = fault_sample_bytes(options);
  if (options.sample_bytes && !options.growth) config.sample_bytes = *options.sample_bytes;
  return config;
}

// The allocators a process is traced through, each file once: "jemalloc (/usr/lib/.../libjemalloc.so.2)".
std::string module_list(const std::vector<attach::AllocatorModule>& modules) {
  std::vector<std::string> seen;
  std::string out;
  for (const auto& m : modules) {
    if (m.role != attach::Role::kMalloc && m.role != attach::Role::kNewViaMalloc && m.role != attach::Role::kOwnNew)
      continue;
    if (std::find(seen.begin(), seen.end(), m.path) != seen.end()) continue;
    seen.push_back(m.path);
    out += (out.empty() ? "" : ", ") + m.path;
  }
  return out;
}

}  // namespace

Session::Session(const SessionOptions& options, SnapshotSink& sink)
    : options_(options), sink_(sink), tracker_(tracker_config(options)) {}

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

  if (!options_.command.empty() && !options_.growth) {
    if (auto guard = attach::HoldGuard::start()) guard_.emplace(std::move(*guard));
    else fmt::print(stderr, "memsight: note: {}: libraries the command maps after exec may be missed\n",
                    guard.error().message);
  }
  if (options_.cgroup) {
    auto target = attach::find_cgroup(*options_.cgroup);
    if (!target) return tl::unexpected(target.error());
    cgroup_ = std::move(*target);
  }
  if (auto opened = open_tracer(); !opened) return opened;
  for (const auto& note : events_->notes()) fmt::print(stderr, "memsight: note: {}\n", note);
  if (const std::string note = symbolize::root_resolution_note(); !note.empty())
    fmt::print(stderr, "memsight: note: {}\n", note);
  if (options_.watch_oom) {
    // Without it the trace still works: say what is missing, once.
    if (auto watcher = attach::OomWatcher::open(); watcher) {
      oom_ = std::move(*watcher);
      for (const auto& note : oom_->notes()) fmt::print(stderr, "memsight: note: {}\n", note);
    } else {
      fmt::print(stderr, "memsight: note: OOM kills will not be explained: {}\n", watcher.error().message);
    }
  }
  if (options_.all && options_.growth) {
    fmt::print(stderr, "memsight: growth mode on every process of the host but memsight\n");
    return {};
  }
  if (options_.all) return attach_everything();
  if (cgroup_) return attach_cgroup();
  return options_.command.empty() ? attach_pids(options_.pids, false) : launch_command();
}

bool Session::open_ended() const { return options_.all || (cgroup_ && options_.growth); }

uint32_t Session::probe_scope(uint32_t pid) const {
  return options_.all ? attach::AllocTracer::kEveryProcess : pid;
}

// --all --mode exact: the allocator files of every process now, probed once each for every process
// that maps them (those started later too); files mapped later come with the loader's notices.
Result<void> Session::attach_everything() {
  std::set<std::string> files, unknown;
  size_t processes = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    const auto pid = static_cast<uint32_t>(std::stoul(name));
    if (pid == static_cast<uint32_t>(getpid())) continue;
    auto target = attach::find_target(pid);
    if (!target) {
      if (target.error().code != ExitCode::kTargetMissing) unknown.insert(target.error().message);
      continue;  // a kernel thread, gone, or no allocator memsight knows
    }
    ++processes;
    if (auto attached = attach_modules(attach::AllocTracer::kEveryProcess, target->modules); !attached)
      return attached;
    for (const auto& m : target->modules) files.insert(m.path);
  }
  for (const auto& why : unknown) fmt::print(stderr, "memsight: note: {}\n", why);
  fmt::print(stderr, "memsight: exact mode on every process but memsight: {} processes now, through {} files\n",
             processes, files.size());
  return {};
}

Result<void> Session::attach_cgroup() {
  const std::vector<uint32_t> pids = attach::cgroup_pids(*cgroup_);
  if (options_.growth) {
    fmt::print(stderr, "memsight: growth mode on memory cgroup {} ({} processes now, and those that join)\n",
               cgroup_->path, pids.size());
    return {};
  }
  if (pids.empty())
    return fail(ExitCode::kTargetMissing,
                fmt::format("memory cgroup {} has no process to attach to; --mode growth also takes the processes "
                            "that join it later",
                            cgroup_->path));
  fmt::print(stderr, "memsight: memory cgroup {}: {} processes\n", cgroup_->path, pids.size());
  return attach_pids(pids, /*tolerate_gone=*/true);
}

Result<void> Session::open_tracer() {
  if (options_.growth) {
    attach::GrowthOptions growth;
    shared_tracing(options_, growth);
    if (cgroup_) {
      growth.cgroup_id = cgroup_->id;
      growth.cgroup_level = cgroup_->level;
    }
    growth.sample_bytes = fault_sample_bytes(options_);
    auto tracer = attach::GrowthTracer::open(growth, decoder_);
    if (!tracer) return tl::unexpected(tracer.error());
    growth_ = std::move(*tracer);
    events_ = growth_.get();
    use_unwind_tables();
    return {};
  }
  attach::TracerOptions tracing;
  shared_tracing(options_, tracing);
  if (options_.sample_bytes) tracing.sample_bytes = *options_.sample_bytes;
  auto tracer = attach::AllocTracer::open(tracing, decoder_);
  if (!tracer) return tl::unexpected(tracer.error());
  tracer_ = std::move(*tracer);
  events_ = tracer_.get();
  use_unwind_tables();
  return {};
}

bool Session::build_unwind_tables(std::chrono::steady_clock::duration budget) {
  return unwind_ && unwind_->build_pending(budget);
}

// From here on, every maps snapshot the symbolizer takes gives the walker its modules' tables.
void Session::use_unwind_tables() {
  if (options_.unwind_rows == 0u) return;  // --unwind-rows 0: frame pointers only
  if (core::UnwindSink* sink = events_->unwind_sink()) {
    unwind_ = std::make_unique<symbolize::UnwindRegistry>(*sink);
    symbols_.set_unwind_registry(unwind_.get());
  }
}

// Growth mode needs no allocator: any live process can be traced.
Result<void> Session::attach_growth(uint32_t pid) {
  if (auto added = growth_->add_target(pid); !added) return added;
  symbols_.note_stack(pid, {});  // its maps while it is alive (see attach_pids)
  build_unwind_tables(kAllTables);
  return {};
}

void Session::watch(uint32_t pid, const std::string& comm) {
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  watched_.push_back(Watched{pid, fd, fd < 0, comm});
  tracker_.add_process(pid, monotonic_ns());
}

void Session::note_once(uint32_t pid, const std::string& note) {
  if (said_.insert({pid, note}).second) fmt::print(stderr, "memsight: note: {}\n", note);
}

Result<void> Session::attach_modules(uint32_t pid, const std::vector<attach::AllocatorModule>& modules) {
  // Call sites of new matter only where an allocator serves new itself (jemalloc, tcmalloc).
  const bool own_new = std::any_of(modules.begin(), modules.end(),
                                   [](const attach::AllocatorModule& m) { return m.role == attach::Role::kOwnNew; });
  for (const auto& module : modules) {
    if (module.role == attach::Role::kCaller && !own_new) continue;
    auto notes = tracer_->attach(pid, module);
    if (!notes) return tl::unexpected(notes.error());
    for (const auto& note : *notes) note_once(pid, note);
  }
  return {};
}

// Notices from BPF: a target's loader mapped libraries (after exec, or a dlopen), or an allocator's
// new was called from a site with no probe yet. Probes are placed, then a process memsight started,
// which BPF stopped at the notice, is let go (SIGCONT), whatever happened: a process memsight can't
// follow runs on untraced rather than stopped.
void Session::handle_notices() {
  std::set<uint32_t> stopped;
  for (const ms_notice& n : tracer_->take_notices()) {
    if (command_ && n.tgid == static_cast<uint32_t>(command_->pid())) stopped.insert(n.tgid);
    tracer_->set_address_space(n.tgid, n.mm);
    if (n.kind == MS_NOTICE_NEW_SITE) {
      if (auto placed = tracer_->attach_site(n.tgid, n.address, probe_scope(n.tgid)); !placed)
        note_once(n.tgid, fmt::format("pid {}: some operator new calls are not traced: {}", n.tgid,
                                      placed.error().message));
      continue;
    }
    auto target = attach::find_target(n.tgid);
    if (!target) continue;
    for (const auto& note : target->notes) note_once(n.tgid, note);
    if (auto attached = attach_modules(probe_scope(n.tgid), target->modules); !attached)
      note_once(n.tgid, fmt::format("pid {}: libraries it mapped are not all traced: {}", n.tgid,
                                    attached.error().message));
    if (!options_.all)  // --all: every process start would say it
      note_once(n.tgid, fmt::format("pid {} ({}) allocates through {}", n.tgid, target->comm,
                                    module_list(target->modules)));
    symbols_.note_stack(n.tgid, {});  // its maps with the new libraries in them
  }
  for (uint32_t pid : stopped) kill(static_cast<pid_t>(pid), SIGCONT);
}

// tolerate_gone: a process that exits before memsight attaches is skipped (a cgroup's), not an error.
Result<void> Session::attach_pids(const std::vector<uint32_t>& pids, bool tolerate_gone) {
  for (uint32_t given : pids) {
    if (options_.growth) {
      const auto comm = attach::read_comm(given);
      if (!comm) return fail(ExitCode::kTargetMissing, fmt::format("no process {}: is it running?", given));
      watch(given, *comm);
      if (auto attached = attach_growth(given); !attached) return attached;
      fmt::print(stderr, "memsight: growth mode on pid {} ({}) and the children it forks\n", given, *comm);
      continue;
    }
    auto target = attach::find_target(given);
    if (!target && tolerate_gone && target.error().code == ExitCode::kTargetMissing) {
      fmt::print(stderr, "memsight: note: pid {} not traced: {}\n", given, target.error().message);
      continue;
    }
    if (!target) return tl::unexpected(target.error());
    const uint32_t pid = target->pid;
    for (const auto& note : target->notes) note_once(pid, note);
    watch(pid, target->comm);  // before attaching: a process that exits meanwhile is still noticed
    // Its maps now, while it is alive: a process that exits before its first stack record is read
    // would otherwise leave its frames unnamed.
    symbols_.note_stack(pid, {});
    build_unwind_tables(kAllTables);  // its first stacks complete
    if (auto attached = attach_modules(pid, target->modules); !attached) return attached;
    fmt::print(stderr, "memsight: tracing pid {} ({}) through {}\n", pid, target->comm, module_list(target->modules));
  }
  return {};
}

Result<void> Session::launch_command() {
  auto executable = attach::resolve_command(options_.command.front());
  if (!executable) return tl::unexpected(executable.error());
  auto modules = options_.growth ? Result<std::vector<attach::AllocatorModule>>{}
                                 : attach::modules_for_command(*executable);
  if (!modules) return tl::unexpected(modules.error());
  auto launched = attach::LaunchedCommand::spawn(options_.command, *executable);
  if (!launched) return tl::unexpected(launched.error());
  command_.emplace(std::move(*launched));
  const uint32_t pid = static_cast<uint32_t>(command_->pid());
  // BPF may stop the command while probes are placed (a library mapped after exec, a new call site):
  // only once the guardian knows it, so it is resumed if memsight dies.
  if (guard_ && guard_->watch(pid))
    if (auto holdable = tracer_->make_holdable(pid); !holdable) return holdable;
  watch(pid, std::filesystem::path(*executable).filename().string().substr(0, 15));  // as comm will say
  // Its tables before its first instruction: its first stacks come before memsight reads its maps.
  if (unwind_) {
    unwind_->add_program(*executable);
    for (const auto& module : *modules) unwind_->add_file(module.open_path);
  }
  auto attached = options_.growth ? growth_->add_target(pid) : attach_modules(pid, *modules);
  if (!attached) {
    command_->abandon();
    return attached;
  }
  if (auto released = command_->release(); !released) return released;
  if (options_.growth)
    fmt::print(stderr, "memsight: started {} as pid {}, growth mode\n", *executable, pid);
  else
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
        events_->drain();  // everything it wrote before exiting is in the ring by now
        tracker_.on_exit(w.pid, monotonic_ns());
        if (tracer_) tracer_->forget_process(w.pid);
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
  return all_gone && !open_ended();
}

Result<void> Session::emit(bool final) {
  core::Snapshot snap =
      tracker_.snapshot(monotonic_ns(), {seconds_to_ns(options_.min_age_s), options_.top, /*whole_trace=*/final});
  const attach::BpfLosses bpf = events_->losses();
  snap.lost.events = bpf.unrecorded() + decoder_.counters().rejected();
  snap.lost.truncated_stacks = bpf.stack_truncated;
  for (auto& p : snap.processes) {
    for (const auto& w : watched_)
      if (w.pid == p.pid && !p.comm) p.comm = w.comm;  // an exit record's name is newer
    if (!p.exited) {
      if (auto comm = attach::read_comm(p.pid)) p.comm = comm;
      p.rss_anon_bytes = attach::read_rss_anon_bytes(p.pid);
      p.cgroup = attach::read_cgroup_memory(p.pid);
      if (p.cgroup) p.container_id = core::container_id_of(p.cgroup->path);
    }
  }
  snap.time_unix_ns = realtime_ns();
  book_.observe(snap);
  report::resolve_frames(snap, symbols_);
  return sink_.on_snapshot(snap, final);
}

core::OomHistory Session::history_at(const core::OomFacts& facts, uint64_t at_ns) {
  core::OomHistory h = book_.history(facts);
  std::vector<uint32_t> pids;
  for (const auto& p : h.processes) pids.push_back(p.pid);
  h.stacks = tracker_.evidence(pids, at_ns, h.recent_ns, kOomVerdictRules);
  // Name the stacks an explanation may cite: the largest (evidence is sorted so), and those that grew
  // most in the last seconds.
  std::vector<size_t> newest(h.stacks.size());
  for (size_t i = 0; i < newest.size(); ++i) newest[i] = i;
  std::sort(newest.begin(), newest.end(),
            [&](size_t a, size_t b) { return h.stacks[a].recent_bytes > h.stacks[b].recent_bytes; });
  newest.resize(std::min(newest.size(), kResolvedStacks / 4));
  for (size_t i = 0; i < h.stacks.size(); ++i)
    if (i < kResolvedStacks || std::find(newest.begin(), newest.end(), i) != newest.end())
      report::resolve_row(h.stacks[i].row, symbols_);
  for (auto& p : h.processes) {
    if (p.pid != facts.victim.pid) continue;
    uint64_t heap = 0;
    for (const auto& st : h.stacks) {
      if (st.row.pid != p.pid) continue;
      heap += st.row.outstanding_bytes;
      if (st.row.verdict.samples < core::VerdictRules{}.min_samples) h.short_history = true;
    }
    p.heap.push_back({facts.time_unix_ns, heap});  // the traced heap at the kill itself
  }
  return h;
}

Result<void> Session::explain_kill(const attach::OomReport& report) {
  if (auto drained = events_->drain(); !drained) return tl::unexpected(drained.error());  // its last records
  const uint64_t group = kills_.add(report.victim);
  const auto [number, fresh] = episode_of_group_.try_emplace(group, next_episode_);
  if (fresh) ++next_episode_;
  const core::OomFacts facts = kill_facts(report, number->second);
  if (!fresh) {  // memory.oom.group members and exiting tasks: the episode's first victim explains it
    fmt::print(stderr, "memsight: pid {} ({}) was killed too, in OOM episode {}\n", facts.victim.pid,
               facts.victim.comm, facts.episode);
    return {};
  }
  const core::OomHistory history = history_at(facts, report.victim.time_ns);
  return sink_.on_episode(facts, core::explain_kill(facts, history.processes.empty() ? nullptr : &history));
}

Result<void> Session::explain_failure(const core::AllocFailure& failure) {
  auto& last = last_failure_ns_[failure.pid];
  if (last && failure.time_ns < last + kFailureFoldNs) {
    ++failures_folded_;
    return {};
  }
  last = failure.time_ns;
  std::string comm = attach::read_comm(failure.pid).value_or("");
  for (const auto& w : watched_)
    if (w.pid == failure.pid && comm.empty()) comm = w.comm;
  core::OomFacts facts = failure_facts(failure, next_episode_++, comm);
  if (auto row = tracker_.stack_of(failure.stack_id, failure.time_ns, kOomVerdictRules)) {
    report::resolve_row(*row, symbols_);
    facts.failure->stack = std::move(*row);
  }
  const core::OomHistory history = history_at(facts, failure.time_ns);
  return sink_.on_episode(facts, core::explain_kill(facts, history.processes.empty() ? nullptr : &history));
}

// With --all, a process that exited is shown in the snapshots of the next kExitedKeptNs, then its
// stacks and maps are let go: a host starts thousands of short-lived processes. An OOM victim's
// explanation is written at its kill, long before.
void Session::forget_exited() {
  const uint64_t now = monotonic_ns();
  if (now < kExitedKeptNs) return;
  for (uint32_t pid : tracker_.forget_exited(now - kExitedKeptNs)) symbols_.forget(pid);
}

void Session::follow_children() {
  for (uint32_t child : tracker_.take_forks()) {
    // Growth mode's BPF makes a target's children targets itself; --all probes every process already.
    if (options_.growth || options_.all) continue;
    if (std::any_of(watched_.begin(), watched_.end(), [&](const Watched& w) { return w.pid == child; })) continue;
    auto target = attach::find_target(child);
    if (!target) continue;  // gone already: it allocated nothing memsight could see
    watch(child, target->comm);
    symbols_.note_stack(child, {});  // its maps while it is alive (see attach_pids)
    for (const auto& note : target->notes) note_once(child, note);
    build_unwind_tables(kAllTables);
    if (auto attached = attach_modules(child, target->modules); !attached) {
      fmt::print(stderr, "memsight: note: child pid {} not followed: {}\n", child, attached.error().message);
      continue;
    }
    fmt::print(stderr, "memsight: following pid {} ({}), forked by a target\n", child, target->comm);
  }
}

Result<void> Session::handle_episodes() {
  for (const auto& failure : tracker_.take_failures())
    if (auto ok = explain_failure(failure); !ok) return ok;
  if (!oom_) return {};
  auto reports = oom_->poll(0);
  if (!reports) return tl::unexpected(reports.error());
  for (const auto& r : *reports)
    if (auto ok = explain_kill(r); !ok) return ok;
  kills_.poll(monotonic_ns());
  return {};
}

Result<void> Session::finish_episodes() {
  if (auto drained = events_->drain(); !drained) return tl::unexpected(drained.error());
  if (auto ok = handle_episodes(); !ok) return ok;
  // A victim's record is in the ring before it dies; its report waits a moment for the kernel log.
  while (oom_ && oom_->pending() > 0) {
    auto reports = oom_->poll(50);
    if (!reports) return tl::unexpected(reports.error());
    for (const auto& r : *reports)
      if (auto ok = explain_kill(r); !ok) return ok;
  }
  if (failures_folded_)
    fmt::print(stderr, "memsight: {} more failed allocations came within {} s of one already explained\n",
               failures_folded_, kFailureFoldNs / 1'000'000'000);
  return {};
}

SessionStats Session::stats() const {
  return SessionStats{decoder_.counters().records, decoder_.counters().rejected(), events_->losses(),
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
    // Tables of modules met since the last turn, a slice at a time: records keep flowing meanwhile.
    const bool building = build_unwind_tables(kTableSlice);
    const int wait_ms = now >= until || building
                            ? 0
                            : static_cast<int>(std::min<uint64_t>((until - now) / 1'000'000, kTickMs));
    if (auto polled = events_->poll(wait_ms); !polled) return tl::unexpected(polled.error());
    if (tracer_) handle_notices();
    follow_children();
    if (auto ok = handle_episodes(); !ok) return ok;
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
      if (open_ended()) forget_exited();
    }
  }
  if (auto ok = finish_episodes(); !ok) return ok;
  auto emitted = emit(true);
  print_throughput(monotonic_ns() - start);
  return emitted;
}

// One line at the end: how many records came through, how fast, and how many were lost on the way
// (records offered = decoded + lost; docs/reliability.md measures where losses begin).
void Session::print_throughput(uint64_t elapsed_ns) const {
  const SessionStats s = stats();
  const uint64_t lost = s.bpf.unrecorded() + s.rejected;
  const double seconds = std::max(static_cast<double>(elapsed_ns) / 1e9, 1e-9);
  std::string refused;
  if (s.tracker.refused_blocks)
    refused = fmt::format("; {} allocations untracked at the --max-blocks cap", s.tracker.refused_blocks);
  if (s.bpf.sampled_full || s.bpf.no_sampler)
    refused += fmt::format("; sampled blocks not recorded: {} (table of sampled blocks full), {} (no sampler "
                           "state for the thread)", s.bpf.sampled_full, s.bpf.no_sampler);
  // Calls whose return was never seen: left by longjmp, or an allocator's new returning through a call
  // site not probed yet (-p targets, until its probe is placed).
  if (s.bpf.inflight_stale)
    refused += fmt::format("; {} allocating calls whose return was not seen", s.bpf.inflight_stale);
  fmt::print(stderr,
             "memsight: {} records in {:.1f} s, {:.0f}/s; {} lost (ring buffer full {}, calls or faults not remembered {}, "
             "rejected {}){}\n",
             s.records, seconds, static_cast<double>(s.records) / seconds, lost, s.bpf.ringbuf_full,
             s.bpf.inflight_full, s.rejected, refused);
  if (unwind_) print_unwinding(s.bpf, unwind_->stats());
}

// What the stack walker could not do, and what its tables cost (docs/unwinding.md).
void Session::print_unwinding(const attach::BpfLosses& bpf, const symbolize::UnwindStats& u) const {
  std::string left_out;
  if (u.refused_at_cap) left_out = fmt::format(", {} left out at the cap", u.refused_at_cap);
  if (u.failures) left_out += fmt::format(", {} files without a usable table", u.failures);
  if (u.waiting) left_out += fmt::format(", {} files still waiting for theirs", u.waiting);
  fmt::print(stderr,
             "memsight: stacks: {} call-frame walks stopped on code without rules, {} walked by frame pointers "
             "(in whole or in part: a module without a table yet); tables: {} files, {} rows, {} KiB of {} KiB, built in {:.0f} ms{}\n",
             bpf.unwind_stopped, bpf.unwind_frame_pointers, u.files, u.rows, u.bytes() / 1024,
             u.capacity_bytes() / 1024, u.build_ms, left_out);
  if (!u.last_error.empty()) fmt::print(stderr, "memsight: note: call-frame tables: {}\n", u.last_error);
}

}  // namespace memsight::cli
