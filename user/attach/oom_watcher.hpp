// OOM watch: loads bpf/oom_watch.bpf.c (tp_btf/mark_victim, raw_tp where tp_btf fails), drains its ring
// buffer, and delivers each victim with what only the moment of the kill can tell:
//
//   victim record ──► decode ──► read the victim's memory cgroup NOW ──► wait (briefly) for the
//   (BPF ring)                   (path, usage/limit/stat, OOM counters:   kernel log's lines of the
//                                 the reaper and cgroup removal erase      kill (/dev/kmsg: domain,
//                                 them within milliseconds)                constraint) ──► OomReport
//
// The kernel log is enrichment (rate-limited, may be unreadable): a victim waits at most kmsg_wait_ns
// for it, and not at all when it was already exiting (the kernel logs no kill for those).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "attach/cgroup_memory.hpp"
#include "attach/kmsg_reader.hpp"
#include "core/error.hpp"
#include "core/kmsg_oom.hpp"
#include "core/oom_event.hpp"
#include "core/snapshot.hpp"

struct oom_watch;
struct ring_buffer;
struct bpf_link;

namespace memsight::attach {

struct OomWatchOptions {
  uint32_t ring_bytes = 256u << 10;     // ring buffer size (power of two, ≥ one page)
  uint64_t kmsg_wait_ns = 250'000'000;  // how long a victim waits for its kernel-log lines
  bool kernel_log = true;               // read /dev/kmsg (domain and constraint come only from there)
  bool try_btf = true;                  // false: go straight to raw_tp (tests the fallback)
};

// A memory cgroup as read at one moment.
struct CgroupOomSnapshot {
  std::optional<std::string> path;           // relative to the hierarchy's mount; empty when unresolved
  std::string path_source;                   // "proc" (/proc/PID/cgroup), "scan" (id->path cache), "log", ""
  bool v2 = false;                           // which hierarchy `path` is in
  std::optional<core::CgroupMemory> memory;  // usage, limit, breakdown; empty when unreadable (removed)
  core::CgroupOomCounters counters;          // v1 memory.failcnt + memory.oom_control, v2 memory.events
  uint64_t read_ns = 0;                      // CLOCK_MONOTONIC when read
};

struct OomReport {
  core::OomVictim victim;
  uint64_t received_ns = 0;                     // CLOCK_MONOTONIC when the record reached user space
  CgroupOomSnapshot cgroup;                     // the victim's memory cgroup, read as the record arrived
  std::optional<core::KmsgOomKill> kernel_log;  // the kill's log lines, joined by task id
  // The cgroup whose limit was hit (the log's oom_memcg) when it is not the victim's own, read at
  // delivery (its limit and counters; its usage has moved on by then).
  std::optional<CgroupOomSnapshot> domain;
};

struct OomWatchLosses {
  uint64_t seen = 0;              // mark_victim events in BPF
  uint64_t ringbuf_full = 0;      // victim records BPF could not write
  uint64_t rejected = 0;          // records the decoder refused (bad size or kind)
  uint64_t kmsg_overwritten = 0;  // kernel-log records lost before they were read
  uint64_t kmsg_malformed = 0;    // kernel-log records that did not parse
};

class MemcgPaths;

class OomWatcher {
 public:
  static Result<std::unique_ptr<OomWatcher>> open(const OomWatchOptions& options = {});
  ~OomWatcher();

  // Readable when victim records wait (the ring buffer's epoll fd); kmsg_fd() when log records do
  // (-1 without the kernel log). An outside event loop polls both and calls poll(0), and calls it at
  // least every kmsg_wait_ns while pending() is non-zero.
  int fd() const;
  int kmsg_fd() const { return kmsg_ ? kmsg_->fd() : -1; }
  // Waits up to timeout_ms for records, then returns every victim that is complete (its log lines
  // joined, or waited for long enough), oldest first.
  Result<std::vector<OomReport>> poll(int timeout_ms);
  size_t pending() const { return pending_.size(); }

  OomWatchLosses losses() const;
  const std::vector<std::string>& notes() const { return notes_; }  // degraded modes, said once
  const char* program() const { return program_; }  // "tp_btf/mark_victim" or "raw_tp/mark_victim"

 private:
  explicit OomWatcher(const OomWatchOptions& options);
  static int on_sample(void* ctx, void* data, size_t size);  // ring-buffer callback
  void on_record(std::span<const std::byte> bytes);          // decode, read the cgroup, queue
  Result<void> load(bool btf);
  CgroupOomSnapshot snapshot_victim_cgroup(const core::OomVictim& victim);
  std::optional<CgroupOomSnapshot> snapshot_domain(const OomReport& report);
  std::vector<OomReport> take_ready(uint64_t now_ns);
  int wait_ms(int timeout_ms, uint64_t now_ns) const;

  OomWatchOptions options_;
  oom_watch* skel_ = nullptr;
  ring_buffer* ring_ = nullptr;
  bpf_link* link_ = nullptr;
  const char* program_ = "";
  std::optional<KmsgReader> kmsg_;
  core::KmsgOomJoin log_;
  std::optional<MemoryHierarchy> hierarchy_;
  std::unique_ptr<MemcgPaths> paths_;
  std::vector<OomReport> pending_;  // arrived, waiting for their log lines
  uint64_t page_bytes_ = 4096;
  uint64_t rejected_ = 0;
  std::vector<std::string> notes_;
};

}  // namespace memsight::attach
