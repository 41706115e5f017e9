// One trace from attach to the final snapshot: targets, the tracer, the tracker and the symbolizer
// wired together, and the loop that drains the ring buffer, notices exits and signals, samples the
// verdict history every second, and hands a resolved snapshot to a sink each interval.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "attach/alloc_tracer.hpp"
#include "attach/cgroup_target.hpp"
#include "attach/growth_tracer.hpp"
#include "attach/hold_guard.hpp"
#include "attach/launcher.hpp"
#include "attach/oom_watcher.hpp"
#include "cli/options.hpp"
#include "core/decoder.hpp"
#include "core/oom_event.hpp"
#include "core/oom_explain.hpp"
#include "core/oom_history_book.hpp"
#include "core/pipeline.hpp"
#include "core/tracker.hpp"
#include "symbolize/symbolizer.hpp"

namespace memsight::cli {

// Where snapshots go: a text or JSON stream (trace), a database and metrics (record).
class SnapshotSink {
 public:
  virtual ~SnapshotSink() = default;
  // `snap` has its frames resolved and its time filled; `final` marks the last one.
  virtual Result<void> on_snapshot(core::Snapshot& snap, bool final) = 0;
  // An OOM kill (record watches them) or a failed allocation of a target, explained.
  virtual Result<void> on_episode(const core::OomFacts& facts, const core::OomExplanation& why) = 0;
};

// Counters of the pipeline itself, for reports on memsight's own health.
struct SessionStats {
  uint64_t records = 0;  // decoded and delivered
  uint64_t rejected = 0;
  attach::BpfLosses bpf;
  core::TrackerCounters tracker;
};

class Session {
 public:
  Session(const SessionOptions& options, SnapshotSink& sink);
  ~Session();

  // Checks privileges and kernel, finds the targets, loads and attaches. After it succeeds, run().
  Result<void> start();
  Result<void> run();
  SessionStats stats() const;
  // Episodes are numbered from here (a database continues its own numbering).
  void number_episodes_from(uint64_t first) { next_episode_ = first; }

 private:
  struct Watched {
    uint32_t pid = 0;
    int pidfd = -1;  // readable once the process has exited
    bool exited = false;
    std::string comm;
  };
  Result<void> open_tracer();
  void use_unwind_tables();
  // Builds the call-frame tables waiting, for up to `budget`; true when some still wait.
  bool build_unwind_tables(std::chrono::steady_clock::duration budget);
  static constexpr std::chrono::milliseconds kTableSlice{5};  // per turn of the loop, between polls
  static constexpr std::chrono::steady_clock::duration kAllTables = std::chrono::steady_clock::duration::max();
  Result<void> attach_modules(uint32_t pid, const std::vector<attach::AllocatorModule>& modules);
  Result<void> attach_growth(uint32_t pid);
  Result<void> attach_pids(const std::vector<uint32_t>& pids, bool tolerate_gone);
  Result<void> attach_cgroup();
  bool open_ended() const;  // runs until Ctrl-C or --duration: no target list to outlive
  uint32_t probe_scope(uint32_t pid) const;  // whom a process's probes are attached for
  Result<void> attach_everything();          // --all --mode exact
  void handle_notices();  // probes BPF asked for (libraries mapped, new call sites)
  void note_once(uint32_t pid, const std::string& note);  // each note said once per process
  Result<void> launch_command();
  void watch(uint32_t pid, const std::string& comm);
  bool reap_exits();  // true when every target has exited
  void follow_children();  // attaches to the processes targets forked
  void forget_exited();    // --all: lets go of processes gone a while
  Result<void> emit(bool final);
  void print_throughput(uint64_t elapsed_ns) const;
  void print_unwinding(const attach::BpfLosses& bpf, const symbolize::UnwindStats& u) const;
  // OOM kills and failed allocations: each explained from the history and handed to the sink.
  Result<void> handle_episodes();
  Result<void> finish_episodes();  // at the end: the victims whose reports are still on their way
  Result<void> explain_kill(const attach::OomReport& report);
  Result<void> explain_failure(const core::AllocFailure& failure);
  core::OomHistory history_at(const core::OomFacts& facts, uint64_t monotonic_ns);

  SessionOptions options_;
  SnapshotSink& sink_;
  core::Tracker tracker_;
  symbolize::Symbolizer symbols_;
  core::Pipeline pipeline_{tracker_, symbols_};
  core::Decoder decoder_{pipeline_};
  // Destroyed after the tracer: its programs may stop the command until their links are gone.
  std::optional<attach::HoldGuard> guard_;
  std::unique_ptr<attach::AllocTracer> tracer_;    // exact mode
  std::unique_ptr<attach::GrowthTracer> growth_;   // growth mode
  attach::EventSource* events_ = nullptr;          // whichever of the two runs
  std::optional<attach::CgroupTarget> cgroup_;     // --cgroup
  std::unique_ptr<symbolize::UnwindRegistry> unwind_;  // call-frame tables for the BPF stack walker
  std::optional<attach::LaunchedCommand> command_;
  std::vector<Watched> watched_;
  int signal_fd_ = -1;
  std::set<std::pair<uint32_t, std::string>> said_;  // notes already given, per process

  std::unique_ptr<attach::OomWatcher> oom_;  // with options_.watch_oom, when it loads
  core::EpisodeGrouper kills_;
  std::map<uint64_t, uint64_t> episode_of_group_;  // the grouper's number -> the episode's
  uint64_t next_episode_ = 1;
  core::HistoryBook book_;
  std::map<uint32_t, uint64_t> last_failure_ns_;  // per process: repeated failures fold into one episode
  uint64_t failures_folded_ = 0;
};


}  // namespace memsight::cli
