// The call-frame tables of the traced processes' modules: built once per module (by build-id, else by
// file), shared by every process and file that maps it, written to the walker through a sink, within a
// cap on their memory (the sink's capacity). Counters say what was left out and why.
//
//   maps snapshot ─► executable file mappings ─► (device, inode) seen? ─► queue ─► build_pending (in slices):
//                                                       table by build-id (built once) ─► sink: rows, then
//                                                       the file
//
// Building takes milliseconds per module (~40 ms for libc): the queue lets the caller build between
// other work (a host-wide trace meets hundreds of modules), or all at once before tracing starts.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/unwind_sink.hpp"
#include "elf_module.hpp"
#include "maps.hpp"
#include "module_cache.hpp"

namespace memsight::symbolize {

struct UnwindStats {
  uint64_t files = 0;           // files the walker can unwind through
  uint64_t tables = 0;          // distinct tables (files with the same build-id share one)
  uint64_t rows = 0;            // rows written, all tables
  uint64_t capacity_rows = 0;   // the cap
  uint64_t refused_at_cap = 0;  // tables left out: they did not fit under the cap
  uint64_t failures = 0;  // files with no usable table (no call-frame information, not x86-64, unreadable)
  uint64_t unsupported_ranges = 0;  // code ranges whose rules the walker does not follow (it stops there)
  uint64_t waiting = 0;             // files queued, their tables not built yet
  double build_ms = 0;              // time spent building tables, ms
  std::string last_error;           // the latest failure, naming the file
  uint64_t bytes() const { return rows * sizeof(ms_unwind_row); }
  uint64_t capacity_bytes() const { return capacity_rows * sizeof(ms_unwind_row); }
};

class UnwindRegistry {
 public:
  explicit UnwindRegistry(core::UnwindSink& sink);

  // Queues the table of every executable file mapping in `mappings` not seen yet (build_pending gives
  // them to the walker); `module_of` opens a mapping's file (null when it cannot), for every executable
  // mapping, at once.
  void add_mappings(std::span<const Mapping> mappings,
                    const std::function<ElfModule*(const Mapping&)>& module_of);
  // The same for one file by path (a command about to run, before it maps anything): keyed by what stat
  // says, which is what the kernel's VMA says except on file systems with per-subvolume devices (btrfs).
  void add_file(const std::string& path);
  // The same for a program and its dynamic loader (PT_INTERP), which runs the first code a process runs.
  void add_program(const std::string& path);
  // Builds queued tables, oldest first, until none is left or `budget` is spent (at least one).
  // Returns true when some are still waiting.
  bool build_pending(std::chrono::steady_clock::duration budget);

  const UnwindStats& stats() const { return stats_; }

 private:
  struct FileKey {
    uint64_t dev, inode;
    bool operator==(const FileKey&) const = default;
  };
  struct FileKeyHash {
    size_t operator()(const FileKey& k) const noexcept { return k.inode * 0x9E3779B97F4A7C15ull ^ k.dev; }
  };
  void add(const FileKey& key, Elf* elf, const std::optional<std::string>& build_id, const std::string& name);
  std::optional<ms_unwind_module> place(Elf* elf, const std::string& name);
  struct Pending {
    FileKey key;
    ElfModule* module;  // owned by the symbolizer's module cache, which never closes it
    std::string name;
  };

  static constexpr uint64_t kMaxShareOfCap = 4;  // a module may take 1/4 of the cap at most
  core::UnwindSink& sink_;
  std::unordered_set<FileKey, FileKeyHash> files_;                 // tried, with a table or not
  std::unordered_map<std::string, ms_unwind_module> by_build_id_;  // tables written
  // Files given by path, kept open: the walker finds tables by (device, inode), which must not pass to
  // another file while memsight runs. (Files of mappings are kept open by the symbolizer's module cache.)
  std::vector<ElfFile> held_;
  std::deque<Pending> pending_;
  uint32_t next_row_ = 0;
  UnwindStats stats_;
};

}  // namespace memsight::symbolize
