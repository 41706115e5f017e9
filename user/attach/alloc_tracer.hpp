// The only code that touches libbpf for exact tracing: open, size and load the BPF object, attach the
// probe table to each target's allocator, drain the ring buffer into the decoder, read loss counters.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "attach/event_source.hpp"
#include "attach/ring_reader.hpp"
#include "attach/target.hpp"
#include "attach/trace_options.hpp"
#include "attach/unwind_maps.hpp"
#include "core/decoder.hpp"
#include "core/error.hpp"
#include "memsight/abi.h"

struct alloc_trace;
struct bpf_link;

namespace memsight::attach {

struct TracerOptions : TraceOptions {
  uint32_t sampled_blocks = 1u << 20;  // taken blocks alive at once, all targets (sampling only); more are
                                       // counted in BpfLosses::sampled_full
};

class AllocTracer final : public EventSource {
 public:
  static Result<std::unique_ptr<AllocTracer>> open(const TracerOptions& options, core::Decoder& decoder);
  ~AllocTracer();

  // Attaches every function of the module's role that it defines, scoped to `pid`, once per file and
  // role (a second call for the same file does nothing and returns no notes). Returns notes for the
  // user (functions this allocator lacks, roles this kernel or these privileges can't probe).
  Result<std::vector<std::string>> attach(uint32_t pid, const AllocatorModule& module);
  Result<int> poll(int timeout_ms) override { return ring_.poll(timeout_ms); }
  Result<int> drain() override { return ring_.drain(); }
  BpfLosses losses() const override;
  // --sample-bytes: drops an exited process's entries from the BPF table of sampled blocks, which
  // would otherwise fill it over a long trace (and could match the frees of a later process with its
  // pid). O(table size) system calls: once per exit.
  void forget_process(uint32_t pid);
  // As a pid to attach(): the probes are on the file, for every process that maps it (--all).
  static constexpr uint32_t kEveryProcess = UINT32_MAX;
  // Attaches ms_site at `address`, a return site of an allocator's new in process `pid` (a notice),
  // for `probe_pid` (pid itself, or kEveryProcess).
  Result<void> attach_site(uint32_t pid, uint64_t address, uint32_t probe_pid);
  // Lets BPF stop `pid` (SIGSTOP) at each notice, until resumed: for the command memsight started.
  Result<void> make_holdable(uint32_t pid);
  // Notices since the last call (see abi.h MS_NOTICE_*): each needs probes, then SIGCONT if holdable.
  std::vector<ms_notice> take_notices() { return std::exchange(notices_, {}); }
  // The address space a notice named for `pid` (its current image): call sites found in the code are
  // entered in BPF's `sites` under it, so their first calls need no notice (nor a stop).
  void set_address_space(uint32_t pid, uint64_t mm) { mm_of_[pid] = mm; }
  // Notes from start-up (exec/fork tracepoints that did not attach).
  const std::vector<std::string>& notes() const override { return notes_; }
  core::UnwindSink* unwind_sink() override { return unwind_.get(); }

 private:
  explicit AllocTracer(alloc_trace* skel) : skel_(skel) {}
  Result<void> start_ring(core::Decoder& decoder);
  void attach_process_events(bool all);
  static int on_notice(void* ctx, void* data, size_t size);
  bool loaded(const char* program) const;
  std::optional<std::string> unprobeable(uint32_t pid, const AllocatorModule& module) const;
  bool covered_release(const AllocatorModule& module, uint64_t offset, uint64_t size) const;
  Result<void> attach_call_sites(uint32_t pid, const AllocatorModule& module);
  void enter_known_sites(uint32_t pid, const AllocatorModule& module, const std::vector<uint64_t>& offsets);

  alloc_trace* skel_ = nullptr;
  RingReader ring_;
  std::vector<bpf_link*> links_;
  std::vector<std::string> notes_;
  std::vector<ms_notice> notices_;  // from the notices ring, until take_notices()
  // (pid, dev, inode, file offset) of the new call sites probed: found in the code, or told by a notice.
  std::set<std::tuple<uint32_t, uint64_t, uint64_t, uint64_t>> sites_;
  // (dev, inode) -> the new call sites found in that file's code (decoding it takes a while).
  std::map<std::pair<uint64_t, uint64_t>, std::vector<uint64_t>> sites_in_file_;
  std::map<uint32_t, uint64_t> mm_of_;  // pid -> address space, from its last notice
  // (pid, dev, inode, role) already attached: a rendezvous finds the same files again.
  std::set<std::tuple<uint32_t, uint64_t, uint64_t, Role>> attached_;
  std::unique_ptr<UnwindMaps> unwind_;
};

}  // namespace memsight::attach
