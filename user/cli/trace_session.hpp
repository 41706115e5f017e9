// One trace from attach to the final snapshot: targets, the tracer, the tracker and the reporters wired
// together, and the loop that drains the ring buffer, notices exits and signals, and prints snapshots.
#pragma once

#include <cstdio>
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

class TraceSession {
 public:
  TraceSession(const TraceOptions& options, FILE* out);
  ~TraceSession();

  // Checks privileges and kernel, finds the targets, loads and attaches. After it succeeds, run().
  Result<void> start();
  Result<void> run();

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

  TraceOptions options_;
  FILE* out_;
  core::Tracker tracker_;
  symbolize::Symbolizer symbols_;
  core::Pipeline pipeline_{tracker_, symbols_};
  core::Decoder decoder_{pipeline_};
  std::unique_ptr<attach::AllocTracer> tracer_;
  std::optional<attach::LaunchedCommand> command_;
  std::vector<Watched> watched_;
  int signal_fd_ = -1;
  bool interactive_ = false;  // text to a terminal: redraw in place
};

uint64_t monotonic_ns();

}  // namespace memsight::cli
