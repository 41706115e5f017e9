#include "symbol_table.hpp"

#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace memsight::symbolize {
namespace {

// How far back a lookup walks when the nearest symbol below ends before the address (nested symbols).
constexpr int kMaxNestedWalk = 4;
constexpr uint16_t kVersymHidden = 0x8000;

using SectionRanges = std::vector<std::pair<uint64_t, uint64_t>>;  // [sh_addr, sh_addr + sh_size)

SectionRanges section_ranges(Elf* elf) {
  SectionRanges ranges;
  size_t count = 0;
  if (elf_getshdrnum(elf, &count) != 0) return ranges;
  ranges.resize(count);
  for (size_t i = 1; i < count; ++i) {
    GElf_Shdr shdr;
    Elf_Scn* scn = elf_getscn(elf, i);
    if (scn == nullptr || gelf_getshdr(scn, &shdr) == nullptr) continue;
    if (shdr.sh_addr + shdr.sh_size >= shdr.sh_addr) ranges[i] = {shdr.sh_addr, shdr.sh_addr + shdr.sh_size};
  }
  return ranges;
}

size_t leading_underscores(const char* name) {
  size_t n = 0;
  while (name[n] == '_') ++n;
  return n;
}

}  // namespace

void SymbolTable::add(Elf* elf) {
  SectionRanges ranges = section_ranges(elf);
  Elf_Scn* dynsym = nullptr;
  Elf_Scn* versym = nullptr;
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) continue;
    if (shdr.sh_type == SHT_SYMTAB) add_section(elf, scn, nullptr, ranges);
    if (shdr.sh_type == SHT_DYNSYM) dynsym = scn;
    if (shdr.sh_type == SHT_GNU_versym) versym = scn;
  }
  if (dynsym != nullptr) add_section(elf, dynsym, versym, ranges);
}

void SymbolTable::add_section(Elf* elf, Elf_Scn* scn, Elf_Scn* versym, const SectionRanges& ranges) {
  GElf_Shdr shdr;
  Elf_Data* data = elf_getdata(scn, nullptr);
  size_t entry_size = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
  if (gelf_getshdr(scn, &shdr) == nullptr || data == nullptr || entry_size == 0) return;
  Elf_Data* versions = versym != nullptr ? elf_getdata(versym, nullptr) : nullptr;
  size_t count = data->d_size / entry_size;
  for (size_t i = 1; i < count; ++i) {
    GElf_Sym sym;
    if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
    int type = GELF_ST_TYPE(sym.st_info);
    if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_value == 0) continue;
    if (sym.st_shndx == SHN_UNDEF || sym.st_shndx >= ranges.size()) continue;
    const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
    if (name == nullptr || name[0] == '\0') continue;
    Entry e;
    e.start = sym.st_value;
    e.sized = sym.st_size > 0 && sym.st_value + sym.st_size > sym.st_value;
    e.end = e.sized ? sym.st_value + sym.st_size : ranges[sym.st_shndx].second;
    if (e.end <= e.start) continue;  // unsized and outside its section: nothing it can cover
    e.name = name;
    int binding = GELF_ST_BIND(sym.st_info);
    e.binding = binding == STB_GLOBAL ? 2 : binding == STB_WEAK ? 1 : 0;
    GElf_Versym version = 0;
    if (versions != nullptr && gelf_getversym(versions, static_cast<int>(i), &version) != nullptr) {
      e.hidden = (version & kVersymHidden) != 0;
    }
    const char* at = std::strchr(name, '@');
    if (at != nullptr && at[1] != '@') e.hidden = true;
    entries_.push_back(e);
  }
}

// For aliases at one address: the name people call it by ("malloc", not "__libc_malloc").
bool SymbolTable::better_name(const Entry& a, const Entry& b) {
  // glibc exports calloc as a weak alias of the global __libc_calloc: the name comes before binding.
  if (a.hidden != b.hidden) return !a.hidden;
  size_t ua = leading_underscores(a.name), ub = leading_underscores(b.name);
  if (ua != ub) return ua < ub;
  if (a.binding != b.binding) return a.binding > b.binding;
  size_t la = std::strlen(a.name), lb = std::strlen(b.name);
  if (la != lb) return la < lb;
  return std::strcmp(a.name, b.name) < 0;
}

void SymbolTable::finish() {
  std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
    return a.start != b.start ? a.start < b.start : better_name(a, b);
  });
  std::vector<Entry> merged;
  merged.reserve(entries_.size());
  for (const Entry& e : entries_) {
    if (!merged.empty() && merged.back().start == e.start) {
      Entry& kept = merged.back();
      if (e.sized && (!kept.sized || e.end > kept.end)) kept.end = e.end;
      kept.sized = kept.sized || e.sized;
      continue;
    }
    merged.push_back(e);
  }
  for (size_t i = 0; i + 1 < merged.size(); ++i) {
    if (!merged[i].sized) merged[i].end = std::min(merged[i].end, merged[i + 1].start);
  }
  merged.shrink_to_fit();
  entries_ = std::move(merged);
}

const char* SymbolTable::find(uint64_t vaddr) const {
  auto after = std::upper_bound(entries_.begin(), entries_.end(), vaddr,
                                [](uint64_t a, const Entry& e) { return a < e.start; });
  auto it = after;
  for (int walked = 0; it != entries_.begin() && walked < kMaxNestedWalk; ++walked) {
    --it;
    if (vaddr < it->end) return it->name;
  }
  return nullptr;
}

}  // namespace memsight::symbolize
