#include "dwarf_frames.hpp"

#include <dwarf.h>
#include <elfutils/libdw.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "demangle.hpp"
#include "elf_file.hpp"

namespace memsight::symbolize {
namespace {

// Deeper DIE nesting than this is malformed (or hostile) DWARF: not followed.
constexpr uint32_t kMaxDieDepth = 64;
// How many function ranges below an address a lookup checks (nested functions overlap their parent).
constexpr long kMaxOverlapWalk = 4;

struct SourcePos {
  std::optional<std::string> file;
  std::optional<uint32_t> line;  // DWARF line 0 means "no line": kept empty
};

std::optional<uint32_t> as_line(uint64_t value) {
  if (value == 0 || value > std::numeric_limits<uint32_t>::max()) return std::nullopt;
  return static_cast<uint32_t>(value);
}

SourcePos line_at(Dwarf_Die* cudie, Dwarf_Addr vaddr) {
  SourcePos pos;
  Dwarf_Line* line = dwarf_getsrc_die(cudie, vaddr);
  if (line == nullptr) return pos;
  if (const char* file = dwarf_linesrc(line, nullptr, nullptr)) pos.file = file;
  int number = 0;
  if (dwarf_lineno(line, &number) == 0 && number > 0) pos.line = as_line(static_cast<uint64_t>(number));
  return pos;
}

// Where an inlined call was made: DW_AT_call_file (an index into the CU's file table) and DW_AT_call_line.
SourcePos call_site(Dwarf_Die* inlined, Dwarf_Die* cudie) {
  SourcePos pos;
  Dwarf_Attribute attr;
  Dwarf_Word value = 0;
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr), &value) == 0) pos.line = as_line(value);
  Dwarf_Files* files = nullptr;
  size_t count = 0;
  if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &value) == 0 &&
      dwarf_getsrcfiles(cudie, &files, &count) == 0 && value < count) {
    if (const char* file = dwarf_filesrc(files, value, nullptr, nullptr)) pos.file = file;
  }
  return pos;
}

// A C++ linkage name, demangled, carries namespaces and parameters; follow abstract origins and
// specifications to it. Other linkage names are asm labels (glibc's "__GI___libc_malloc"): the
// source name (DW_AT_name) reads better there, as it does for C, extern "C" and main.
std::optional<std::string> function_name(Dwarf_Die* die, NameCache& names) {
  Dwarf_Attribute attr;
  for (int name_attr : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name}) {
    const char* name = dwarf_formstring(dwarf_attr_integrate(die, name_attr, &attr));
    if (name == nullptr || name[0] != '_' || name[1] != 'Z') continue;
    auto cached = names.find(name);
    if (cached == names.end()) cached = names.emplace(name, demangle(name)).first;
    return cached->second;
  }
  if (const char* name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr))) return std::string(name);
  return std::nullopt;
}

core::Frame make_frame(std::optional<std::string> function, const SourcePos& pos, bool inlined) {
  core::Frame frame;
  frame.function = std::move(function);
  frame.file = pos.file;
  frame.line = pos.line;
  frame.inlined = inlined;
  return frame;
}

bool has_pc_attributes(Dwarf_Die* die) {
  return dwarf_hasattr(die, DW_AT_low_pc) || dwarf_hasattr(die, DW_AT_ranges);
}

template <typename Visit>
void for_each_range(Dwarf_Die* die, Visit&& visit) {
  Dwarf_Addr base = 0, low = 0, high = 0;
  for (ptrdiff_t at = 0; (at = dwarf_ranges(die, at, &base, &low, &high)) > 0;) {
    if (high > low) visit(low, high);
  }
}

// Collects every function with code under `die`. Functions sit at the top of a CU, in namespaces and
// classes, and inside other functions (nested functions, local classes).
void collect_functions(Dwarf_Die* die, uint32_t depth, std::vector<Dwarf_Die>& out) {
  Dwarf_Die child;
  if (depth >= kMaxDieDepth || dwarf_child(die, &child) != 0) return;
  do {
    switch (dwarf_tag(&child)) {
      case DW_TAG_subprogram:
        if (has_pc_attributes(&child)) out.push_back(child);
        [[fallthrough]];
      case DW_TAG_namespace:
      case DW_TAG_class_type:
      case DW_TAG_structure_type:
      case DW_TAG_union_type:
      case DW_TAG_lexical_block:
      case DW_TAG_module:
        collect_functions(&child, depth + 1, out);
        break;
      default:
        break;
    }
  } while (dwarf_siblingof(&child, &child) == 0);
}

}  // namespace

DwarfFrames::DwarfFrames(Elf* elf) {
  if (elf == nullptr) return;
  refusal_ = unsafe_for_libdw(elf);
  if (!refusal_) dwarf_ = dwarf_begin_elf(elf, DWARF_C_READ, nullptr);
}

DwarfFrames::~DwarfFrames() {
  if (dwarf_ != nullptr) dwarf_end(dwarf_);
}

const DwarfFrames::CuIndex& DwarfFrames::cu_index(uint64_t cu_offset) {
  auto found = cus_.find(cu_offset);
  if (found != cus_.end()) return found->second;
  CuIndex& index = cus_[cu_offset];
  Dwarf_Die cudie;
  if (dwarf_offdie(dwarf_, cu_offset, &cudie) == nullptr) return index;
  std::vector<Dwarf_Die> functions;
  collect_functions(&cudie, 0, functions);
  for (Dwarf_Die& die : functions) {
    uint64_t offset = dwarf_dieoffset(&die);
    for_each_range(&die, [&](uint64_t low, uint64_t high) { index.push_back({low, high, offset}); });
  }
  std::sort(index.begin(), index.end(), [](const FunctionRange& a, const FunctionRange& b) { return a.low < b.low; });
  return index;
}

namespace {

// Records the inlined calls under `scope`, through lexical blocks; nested functions are left out
// (they have their own entries in the CU index).
template <typename Calls>
void collect_inlined(Dwarf_Die* scope, int32_t parent, uint32_t depth, Calls& out) {
  Dwarf_Die child;
  if (depth >= kMaxDieDepth || dwarf_child(scope, &child) != 0) return;
  do {
    int tag = dwarf_tag(&child);
    if (tag == DW_TAG_inlined_subroutine) {
      auto index = static_cast<int32_t>(out.calls.size());
      out.calls.push_back({dwarf_dieoffset(&child), parent, depth});
      for_each_range(&child, [&](uint64_t low, uint64_t high) {
        out.ranges.push_back({low, high, static_cast<uint32_t>(index)});
      });
      collect_inlined(&child, index, depth + 1, out);
    } else if (tag == DW_TAG_lexical_block || tag == DW_TAG_try_block || tag == DW_TAG_catch_block) {
      collect_inlined(&child, parent, depth + 1, out);
    }
  } while (dwarf_siblingof(&child, &child) == 0);
}

}  // namespace

const DwarfFrames::FunctionCalls& DwarfFrames::function_calls(uint64_t function_die) {
  auto found = functions_.find(function_die);
  if (found != functions_.end()) return found->second;
  FunctionCalls& calls = functions_[function_die];
  Dwarf_Die die;
  if (dwarf_offdie(dwarf_, function_die, &die) != nullptr) collect_inlined(&die, -1, 0, calls);
  return calls;
}

std::vector<core::Frame> DwarfFrames::frames_at(uint64_t vaddr) {
  std::vector<core::Frame> frames;
  Dwarf_Die cudie;
  if (dwarf_ == nullptr || dwarf_addrdie(dwarf_, vaddr, &cudie) == nullptr) return frames;
  SourcePos pos = line_at(&cudie, vaddr);

  const CuIndex& index = cu_index(dwarf_dieoffset(&cudie));
  auto after = std::upper_bound(index.begin(), index.end(), vaddr,
                                [](uint64_t a, const FunctionRange& r) { return a < r.low; });
  Dwarf_Die function;
  const FunctionRange* holder = nullptr;
  for (auto it = after; holder == nullptr && it != index.begin() && after - it < kMaxOverlapWalk;) {
    --it;
    if (vaddr < it->high && dwarf_offdie(dwarf_, it->die, &function) != nullptr) holder = &*it;
  }
  if (holder == nullptr) {
    if (pos.file || pos.line) frames.push_back(make_frame(std::nullopt, pos, false));  // a line, no function DIE
    return frames;
  }
  const FunctionCalls& calls = function_calls(holder->die);
  int32_t innermost = -1;
  for (const InlinedRange& r : calls.ranges) {
    if (r.low <= vaddr && vaddr < r.high &&
        (innermost < 0 || calls.calls[r.call].depth > calls.calls[static_cast<size_t>(innermost)].depth)) {
      innermost = static_cast<int32_t>(r.call);
    }
  }
  for (int32_t call = innermost; call >= 0; call = calls.calls[static_cast<size_t>(call)].parent) {
    Dwarf_Die die;
    if (dwarf_offdie(dwarf_, calls.calls[static_cast<size_t>(call)].die, &die) == nullptr) break;
    frames.push_back(make_frame(function_name(&die, names_), pos, true));
    pos = call_site(&die, &cudie);
  }
  frames.push_back(make_frame(function_name(&function, names_), pos, false));
  return frames;
}

}  // namespace memsight::symbolize
