// One trace from attach to the final snapshot: targets, the tracer, the tracker and the symbolizer
// wired together, and the loop that drains the ring buffer, notices exits and signals, samples the
// verdict history every second, and hands a resolved snapshot to a sink each interval.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "attach/alloc_tracer.hpp"
#include "attach/launcher.hpp"
#include "cli/options.hpp"
#include "core/decoder.hpp"
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

 private:
  struct Watched {
    uint32_t pid = 0;
    int pidfd = -1;  // readable once the process has exited
    bool exited = false;
    std::string comm;
  };
  Result<void> attach_modules(uint32_t pid, const std::vector<attach::AllocatorModule>& modules);
  Result<void> attach_pids();
  Result<void> launch_command();
  void watch(uint32_t pid, const std::string& comm);
  bool reap_exits();  // true when every target has exited
  Result<void> emit(bool final);

  SessionOptions options_;
  SnapshotSink& sink_;
  core::Tracker tracker_;
  symbolize::Symbolizer symbols_;
  core::Pipeline pipeline_{tracker_, symbols_};
  core::Decoder decoder_{pipeline_};
  std::unique_ptr<attach::AllocTracer> tracer_;
  std::optional<attach::LaunchedCommand> command_;
  std::vector<Watched> watched_;
  int signal_fd_ = -1;
};


}  // namespace memsight::cli
