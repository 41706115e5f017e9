// The symbol source of memsight: blazesym's two steps, done with libelf and libdw.
//
//   note_stack (record arrives, process alive)       describe (report time, process maybe gone)
//   pid, address ──► maps snapshot ──► mapping ──►   (module, file offset) ──► cached frames
//                                      module opened once per file (device, inode), kept open
//
// Addresses are symbolized exactly as given. frames[1..] of a stack are return addresses, which point
// just past the call instruction; a caller that wants the line of the call itself passes address - 1
// for those frames (never for frames[0], the allocator entry). Not thread-safe: one owner. Nothing here
// throws: failures become counters (stats()) and address-only frames.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/frame.hpp"
#include "core/symbol_source.hpp"
#include "maps.hpp"
#include "module_cache.hpp"
#include "unwind_registry.hpp"

namespace memsight::symbolize {

// What went wrong, for the counters every report shows. Nothing is dropped silently.
struct SymbolizerStats {
  uint64_t maps_reads = 0;            // snapshots of /proc/PID/maps taken
  uint64_t maps_read_failures = 0;    // maps unreadable (process exited, or no permission)
  uint64_t maps_bad_lines = 0;        // maps lines that did not parse, skipped
  uint64_t modules_open = 0;          // files (device, inode) open for naming, shared by all pids
  uint64_t module_open_failures = 0;  // (pid, file) pairs not openable or not ELF: no function names
  uint64_t modules_dwarf_refused = 0; // files whose DWARF was unsafe to read (malformed or hostile):
                                      // named from their symbol tables only, without lines
  uint64_t addresses_noted = 0;       // distinct (pid, address) pairs noted
  uint64_t addresses_unmapped = 0;    // noted in no mapping of a fresh snapshot: shown as address only
  uint64_t addresses_deferred = 0;    // times an address was left unnoted: in no mapping and no fresh
                                      // snapshot (re-reads are throttled, or failed); a later stack retries
  uint64_t internal_errors = 0;       // unexpected failures (out of memory); the address stays unknown
  std::string last_error;             // the latest failure, naming the pid or the file, or empty
};

class Symbolizer final : public core::SymbolSource {
 public:
  // `proc_root`: where procfs is mounted (tests point it at a fake tree). `debug_dirs`: roots of
  // .build-id/xx/yyyy.debug files, tried for modules that carry no DWARF.
  explicit Symbolizer(std::string proc_root = "/proc",
                      std::vector<std::string> debug_dirs = {"/usr/lib/debug"});

  // Fixes, for each address, its module and file offset. The maps snapshot of `pid` is taken on its
  // first stack and again (at most once per call, and per kMinRefreshGap) when an address lies in
  // no known mapping; an address in no mapping of a fresh snapshot is noted as such.
  void note_stack(uint32_t pid, std::span<const uint64_t> addresses) override;

  // Frames of a noted address, innermost first (inlined calls, then their function); every frame
  // carries `address` and the module path as the process saw it. Unknown: one frame with the
  // address (and the module when known). Works after the process exited. Never throws.
  std::vector<core::Frame> describe(uint32_t pid, uint64_t address,
                                    core::AddressKind kind = core::AddressKind::kExact) override;

  // Drops the maps snapshot and the noted addresses of `pid` (it exec'd). Opened modules stay.
  void forget(uint32_t pid) override;

  SymbolizerStats stats() const;

  // Every maps snapshot taken from now on also gives `unwind` (not owned; null: none) the call-frame
  // tables of the process's modules, opened through this symbolizer's module cache, once the stack that
  // made it take the snapshot is noted.
  void set_unwind_registry(UnwindRegistry* unwind) { unwind_ = unwind; }

  // Reads of one pid's maps are at least this far apart, so garbage frames (frame-pointer walks
  // through code built without frame pointers) or a dead pid cannot make every stack re-read it.
  static constexpr std::chrono::milliseconds kMinRefreshGap{20};

 private:
  struct Location {
    ElfModule* module = nullptr;             // null: not a file, or it could not be opened
    const std::string* path = nullptr;       // interned module path; null: in no mapping, or anonymous
    uint64_t file_offset = 0;                // bytes into the file
  };
  struct ProcessState {
    bool have_maps = false;
    bool maps_tried = false;
    ParsedMaps maps;
    std::chrono::steady_clock::time_point maps_time;  // of the latest read attempt
    std::unordered_map<uint64_t, Location> noted;       // address -> where it lies
    std::unordered_set<FileId, FileIdHash> failed;      // files of this pid that could not be opened
    bool unwind_pending = false;  // a new snapshot whose modules' call-frame tables are not given yet
  };

  struct Refresh {
    bool tried = false;  // a maps re-read was attempted during this note_stack call
    bool fresh = false;  // and succeeded: misses against this snapshot are final
  };

  bool refresh_maps(uint32_t pid, ProcessState& state);
  void note_address(uint32_t pid, ProcessState& state, uint64_t address, Refresh& refresh);
  ElfModule* module_for(uint32_t pid, ProcessState& state, const Mapping& mapping);
  const std::string* intern(std::string path);

  std::string proc_root_;
  ModuleCache modules_;
  std::unordered_map<uint32_t, ProcessState> processes_;
  std::unordered_set<std::string> paths_;  // element addresses stay valid across rehashing
  std::unordered_set<const ElfModule*> refusals_counted_;  // modules counted in modules_dwarf_refused
  SymbolizerStats stats_;
  UnwindRegistry* unwind_ = nullptr;
};

}  // namespace memsight::symbolize
