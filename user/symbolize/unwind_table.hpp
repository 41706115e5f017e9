// Compact call-frame tables for the BPF stack walker (bpf/unwind.bpf.h), built from a module's
// .eh_frame (or .debug_frame when it has none) through libdw, for x86-64.
//
//   FDE rules at each pc (dwarf_cfi_addrframe) ──► one row per range with the same rule:
//   {file offset, CFA = rsp+n | rbp+n | PLT | signal frame | end | none, where the caller's rbp is}
//
// Rows are keyed by file offset, not ELF address, so the walker needs only the VMA's start and file
// offset to look one up. Code without call-frame information, or with a rule the walker does not follow
// (any other DWARF expression, a return address not at CFA - 8), gets a MS_CFA_NONE row: the walk stops
// there and says so, instead of guessing.
#pragma once

#include <cstdint>
#include <string>
#include <tl/expected.hpp>
#include <vector>

#include "memsight/abi.h"

typedef struct Elf Elf;

namespace memsight::symbolize {

struct UnwindTable {
  std::vector<ms_unwind_row> rows;  // sorted by pc, no two neighbours alike, the last a MS_CFA_NONE end
  std::string source;               // ".eh_frame" or ".debug_frame"
  uint64_t unsupported_ranges = 0;  // ranges with call-frame information the walker does not follow
  uint64_t bytes() const { return rows.size() * sizeof(ms_unwind_row); }
};

// Builds the table of `elf` (not owned). Fails, saying why, when the file has no executable segment, no
// call-frame information, or is not x86-64 ELF.
tl::expected<UnwindTable, std::string> build_unwind_table(Elf* elf);

// About how many rows build_unwind_table would make, from the size of the call-frame section alone
// (5.0-5.9 bytes of .eh_frame per row, measured on libc, libstdc++, libm, dash, cc1plus, libLLVM), in
// microseconds: a table too large for the cap is refused before seconds are spent building it
// (libLLVM-14: ~950,000 rows, 7 s). 0 when the file has no such section.
uint64_t estimate_unwind_rows(Elf* elf);

// The row that covers `file_offset`, or nullptr (before the first row). For tests and tools; BPF does
// the same search.
const ms_unwind_row* find_unwind_row(const UnwindTable& table, uint64_t file_offset);

}  // namespace memsight::symbolize
