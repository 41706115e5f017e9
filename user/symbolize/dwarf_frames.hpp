// Source positions and inlined calls from DWARF, through libdw.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/frame.hpp"
#include "demangle.hpp"

typedef struct Elf Elf;
typedef struct Dwarf Dwarf;

namespace memsight::symbolize {

class DwarfFrames {
 public:
  // Reads the DWARF of `elf` (not owned: it must outlive this object). A file without DWARF, with
  // DWARF libdw rejects, or with DWARF libdw would read past the end of (unsafe_for_libdw: then
  // refusal() says why) gives an object that knows nothing (available() == false).
  explicit DwarfFrames(Elf* elf);
  ~DwarfFrames();
  DwarfFrames(const DwarfFrames&) = delete;
  DwarfFrames& operator=(const DwarfFrames&) = delete;

  bool available() const { return dwarf_ != nullptr; }
  // Why the file's DWARF was not handed to libdw, or nullopt (none, or used).
  const std::optional<std::string>& refusal() const { return refusal_; }

  // The frames at ELF virtual address `vaddr`, innermost first: one per inlined call (inlined = true,
  // function = the inlined function, file:line = where in it), then the function that holds them
  // (inlined = false, file:line = the call site of the outermost inlined call, or `vaddr`'s own line).
  // Only function/file/line/inlined are set; function may be empty (DWARF without a name). Empty
  // when no DWARF describes `vaddr`. The first lookup in a compilation unit indexes its functions
  // (one walk of its DIE tree), the first in a function indexes its inlined calls; later lookups
  // binary-search and scan those indexes instead of walking DIEs.
  std::vector<core::Frame> frames_at(uint64_t vaddr);

 private:
  // One address range of a function with code (DW_TAG_subprogram), in ELF virtual addresses.
  struct FunctionRange {
    uint64_t low = 0;
    uint64_t high = 0;  // one past the end
    uint64_t die = 0;   // DIE offset in .debug_info
  };
  using CuIndex = std::vector<FunctionRange>;  // sorted by low
  // The inlined calls (DW_TAG_inlined_subroutine) of one function, each with its address ranges.
  struct InlinedCall {
    uint64_t die = 0;     // DIE offset
    int32_t parent = -1;  // index of the enclosing inlined call; -1: the function itself
    uint32_t depth = 0;   // DIE nesting below the function: the deepest call holding an address wins
  };
  struct InlinedRange {
    uint64_t low = 0;
    uint64_t high = 0;
    uint32_t call = 0;  // index into calls
  };
  struct FunctionCalls {
    std::vector<InlinedCall> calls;
    std::vector<InlinedRange> ranges;
  };

  const CuIndex& cu_index(uint64_t cu_offset);
  const FunctionCalls& function_calls(uint64_t function_die);

  Dwarf* dwarf_ = nullptr;
  std::optional<std::string> refusal_;
  std::unordered_map<uint64_t, CuIndex> cus_;                 // CU DIE offset -> its functions
  std::unordered_map<uint64_t, FunctionCalls> functions_;     // function DIE offset -> its inlined calls
  NameCache names_;                                           // demangled linkage names
};

}  // namespace memsight::symbolize
