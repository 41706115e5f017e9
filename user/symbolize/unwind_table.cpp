#include "unwind_table.hpp"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fmt/format.h>
#include <gelf.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>

#include "elf_file.hpp"

namespace memsight::symbolize {
namespace {

// DWARF register numbers of x86-64 (System V psABI).
constexpr unsigned kRbp = 6;
constexpr unsigned kRsp = 7;
constexpr unsigned kRip = 16;  // the return-address column

struct Segment {
  uint64_t vaddr, end, offset;  // executable PT_LOAD: [vaddr, end) holds file bytes from offset
};

std::vector<Segment> executable_segments(Elf* elf) {
  std::vector<Segment> out;
  size_t count = 0;
  if (elf_getphdrnum(elf, &count) != 0) return out;
  for (size_t i = 0; i < count; ++i) {
    GElf_Phdr phdr;
    if (gelf_getphdr(elf, static_cast<int>(i), &phdr) == nullptr) continue;
    if (phdr.p_type == PT_LOAD && (phdr.p_flags & PF_X) && phdr.p_filesz > 0)
      out.push_back({phdr.p_vaddr, phdr.p_vaddr + phdr.p_filesz, phdr.p_offset});
  }
  return out;
}

bool is_op(const Dwarf_Op& op, uint8_t atom, int64_t number) {
  return op.atom == atom && static_cast<int64_t>(op.number) == number;
}

// The PLT's CFA, as binutils writes it: rsp + 8, plus 8 once the entry has pushed its relocation index,
// which happens at byte `threshold` of each 16-byte entry:
//   DW_OP_breg7 8; DW_OP_breg16 0; DW_OP_lit15; DW_OP_and; DW_OP_lit<threshold>; DW_OP_ge;
//   DW_OP_lit3; DW_OP_shl; DW_OP_plus
std::optional<int32_t> plt_threshold(const Dwarf_Op* ops, size_t n) {
  if (n != 9 || !is_op(ops[0], DW_OP_breg7, 8) || !is_op(ops[1], DW_OP_breg16, 0) ||
      ops[2].atom != DW_OP_lit15 || ops[3].atom != DW_OP_and || ops[4].atom < DW_OP_lit0 ||
      ops[4].atom > DW_OP_lit15 || ops[5].atom != DW_OP_ge || ops[6].atom != DW_OP_lit3 ||
      ops[7].atom != DW_OP_shl || ops[8].atom != DW_OP_plus)
    return std::nullopt;
  return ops[4].atom - DW_OP_lit0;
}

// A register read from the sigcontext: libdw gives DW_CFA_expression rules as
// DW_OP_call_frame_cfa (its own prefix); DW_OP_breg7 <offset>.
bool in_ucontext(Dwarf_Frame* frame, unsigned reg, int64_t offset) {
  Dwarf_Op mem[3], *ops = nullptr;
  size_t n = 0;
  if (dwarf_frame_register(frame, static_cast<int>(reg), mem, &ops, &n) != 0 || ops == nullptr) return false;
  const Dwarf_Op* op = n == 2 && ops[0].atom == DW_OP_call_frame_cfa ? &ops[1] : n == 1 ? &ops[0] : nullptr;
  return op != nullptr && is_op(*op, DW_OP_breg7, offset);
}

// The signal return trampoline (an FDE with the 'S' augmentation): followed only when its rules are
// the kernel's ucontext layout the walker reads.
bool is_signal_frame(Dwarf_Frame* frame) {
  Dwarf_Op* ops = nullptr;
  size_t n = 0;
  if (dwarf_frame_cfa(frame, &ops, &n) != 0 || n != 2) return false;
  return is_op(ops[0], DW_OP_breg7, MS_UCONTEXT_RSP) && ops[1].atom == DW_OP_deref &&
         in_ucontext(frame, kRip, MS_UCONTEXT_RIP) && in_ucontext(frame, kRbp, MS_UCONTEXT_RBP);
}

// The address a register was saved at, as CFA + offset: libdw writes DW_CFA_offset as
// DW_OP_call_frame_cfa [; DW_OP_plus_uconst offset] (a location: no DW_OP_stack_value).
std::optional<int64_t> saved_at_cfa(const Dwarf_Op* ops, size_t n) {
  if (n == 1 && ops[0].atom == DW_OP_call_frame_cfa) return 0;
  if (n == 2 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_plus_uconst)
    return static_cast<int64_t>(ops[1].number);
  return std::nullopt;
}

// The CFA rule: DW_CFA_def_cfa reg, off comes as one DW_OP_bregx (or DW_OP_bregN).
bool set_cfa(Dwarf_Frame* frame, ms_unwind_row& row) {
  Dwarf_Op* ops = nullptr;
  size_t n = 0;
  if (dwarf_frame_cfa(frame, &ops, &n) != 0) return false;
  if (auto threshold = plt_threshold(ops, n)) {
    row.cfa_kind = MS_CFA_PLT;
    row.cfa_off = *threshold;
    return true;
  }
  if (n != 1) return false;
  uint64_t reg = 0;
  int64_t off = 0;
  if (ops[0].atom == DW_OP_bregx) {
    reg = ops[0].number;
    off = static_cast<int64_t>(ops[0].number2);
  } else if (ops[0].atom >= DW_OP_breg0 && ops[0].atom <= DW_OP_breg31) {
    reg = ops[0].atom - DW_OP_breg0;
    off = static_cast<int64_t>(ops[0].number);
  } else {
    return false;
  }
  if ((reg != kRsp && reg != kRbp) || off < std::numeric_limits<int32_t>::min() ||
      off > std::numeric_limits<int32_t>::max())
    return false;
  row.cfa_kind = reg == kRsp ? MS_CFA_RSP : MS_CFA_RBP;
  row.cfa_off = static_cast<int32_t>(off);
  return true;
}

void set_rbp(Dwarf_Frame* frame, ms_unwind_row& row) {
  Dwarf_Op mem[3], *ops = nullptr;
  size_t n = 0;
  row.rbp_kind = MS_RBP_UNKNOWN;
  if (dwarf_frame_register(frame, kRbp, mem, &ops, &n) != 0) return;
  if (n == 0) {
    if (ops == nullptr) row.rbp_kind = MS_RBP_SAME;  // "same value"; ops == mem is "undefined"
    return;
  }
  auto at = saved_at_cfa(ops, n);
  if (!at || *at < std::numeric_limits<int16_t>::min() || *at > std::numeric_limits<int16_t>::max()) return;
  row.rbp_kind = MS_RBP_AT_CFA;
  row.rbp_off = static_cast<int16_t>(*at);
}

// The row of one frame state; `supported` false when the CFI is there but the walker cannot follow it.
ms_unwind_row row_of(Dwarf_Frame* frame, bool signal, bool& supported) {
  ms_unwind_row row{};
  supported = true;
  if (signal) {
    supported = is_signal_frame(frame);
    row.cfa_kind = supported ? MS_CFA_SIGNAL : MS_CFA_NONE;
    return row;
  }
  Dwarf_Op mem[3], *ops = nullptr;
  size_t n = 0;
  if (dwarf_frame_register(frame, kRip, mem, &ops, &n) != 0) {
    supported = false;
    return row;
  }
  if (n == 0 && ops == mem) {
    row.cfa_kind = MS_CFA_END;  // return address undefined: the outermost frame
    return row;
  }
  auto ra = saved_at_cfa(ops, n);
  if (!ra || *ra != -8 || !set_cfa(frame, row)) {
    row = {};
    supported = false;
    return row;
  }
  set_rbp(frame, row);
  return row;
}

bool same_rule(const ms_unwind_row& a, const ms_unwind_row& b) {
  return a.cfa_kind == b.cfa_kind && a.rbp_kind == b.rbp_kind && a.rbp_off == b.rbp_off &&
         a.cfa_off == b.cfa_off;
}

// Rows are appended in pc order; one that repeats the rule before it adds nothing.
void append(std::vector<ms_unwind_row>& rows, ms_unwind_row row) {
  if (!rows.empty() && same_rule(rows.back(), row)) return;
  if (!rows.empty() && rows.back().pc == row.pc) {
    rows.back() = row;
    if (rows.size() > 1 && same_rule(rows[rows.size() - 2], row)) rows.pop_back();
    return;
  }
  rows.push_back(row);
}

struct DwarfCloser {
  void operator()(Dwarf* d) const { dwarf_end(d); }
};

constexpr uint64_t kCfiBytesPerRow = 5;  // the fewest measured (see estimate_unwind_rows)

}  // namespace

uint64_t estimate_unwind_rows(Elf* elf) {
  size_t strings = 0;
  if (elf == nullptr || elf_getshdrstrndx(elf, &strings) != 0) return 0;
  uint64_t eh_frame = 0, debug_frame = 0;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type == SHT_NOBITS) continue;
    const char* name = elf_strptr(elf, strings, shdr.sh_name);
    if (name != nullptr && std::strcmp(name, ".eh_frame") == 0) eh_frame = shdr.sh_size;
    if (name != nullptr && std::strcmp(name, ".debug_frame") == 0) debug_frame = shdr.sh_size;
  }
  return (eh_frame ? eh_frame : debug_frame) / kCfiBytesPerRow;
}

tl::expected<UnwindTable, std::string> build_unwind_table(Elf* elf) {
  GElf_Ehdr ehdr;
  if (elf == nullptr || gelf_getehdr(elf, &ehdr) == nullptr)
    return tl::unexpected(std::string("not an ELF file"));
  if (ehdr.e_machine != EM_X86_64 || ehdr.e_ident[EI_CLASS] != ELFCLASS64)
    return tl::unexpected(std::string("not x86-64: the walker knows only its registers"));
  const auto segments = executable_segments(elf);
  if (segments.empty()) return tl::unexpected(std::string("no executable segment"));

  UnwindTable table;
  std::unique_ptr<Dwarf, DwarfCloser> dwarf;
  Dwarf_CFI* cfi = dwarf_getcfi_elf(elf);  // .eh_frame; owned by elf's libdw data, freed with dwarf_cfi_end
  table.source = ".eh_frame";
  if (cfi == nullptr) {
    if (auto unsafe = unsafe_for_libdw(elf)) return tl::unexpected("no .eh_frame, and " + *unsafe);
    dwarf.reset(dwarf_begin_elf(elf, DWARF_C_READ, nullptr));
    cfi = dwarf ? dwarf_getcfi(dwarf.get()) : nullptr;  // .debug_frame, freed by dwarf_end
    table.source = ".debug_frame";
    if (cfi == nullptr)
      return tl::unexpected(std::string("no call-frame information (.eh_frame or .debug_frame)"));
  }
  for (const Segment& seg : segments) {
    if (seg.offset + (seg.end - seg.vaddr) > std::numeric_limits<uint32_t>::max())
      return tl::unexpected(std::string("executable code beyond 4 GiB into the file"));
    uint64_t at = seg.vaddr;
    while (at < seg.end) {
      ms_unwind_row row{};
      row.pc = static_cast<uint32_t>(at - seg.vaddr + seg.offset);
      Dwarf_Frame* frame = nullptr;
      if (dwarf_cfi_addrframe(cfi, at, &frame) != 0) {
        append(table.rows, row);  // no FDE here: MS_CFA_NONE, until the next one starts
        ++at;
        continue;
      }
      Dwarf_Addr start = 0, end = 0;
      bool signal = false, supported = true;
      dwarf_frame_info(frame, &start, &end, &signal);
      const ms_unwind_row rule = row_of(frame, signal, supported);
      std::free(frame);
      if (!supported) ++table.unsupported_ranges;
      row.cfa_kind = rule.cfa_kind;
      row.rbp_kind = rule.rbp_kind;
      row.rbp_off = rule.rbp_off;
      row.cfa_off = rule.cfa_off;
      append(table.rows, row);
      at = std::max<uint64_t>(end, at + 1);
    }
    ms_unwind_row past{};  // nothing is known past the segment's end
    past.pc = static_cast<uint32_t>(seg.end - seg.vaddr + seg.offset);
    append(table.rows, past);
  }
  if (!dwarf) dwarf_cfi_end(cfi);
  std::sort(table.rows.begin(), table.rows.end(),
            [](const ms_unwind_row& a, const ms_unwind_row& b) { return a.pc < b.pc; });
  return table;
}

const ms_unwind_row* find_unwind_row(const UnwindTable& table, uint64_t file_offset) {
  auto it = std::upper_bound(table.rows.begin(), table.rows.end(), file_offset,
                             [](uint64_t off, const ms_unwind_row& row) { return off < row.pc; });
  return it == table.rows.begin() ? nullptr : &*(it - 1);
}

}  // namespace memsight::symbolize
