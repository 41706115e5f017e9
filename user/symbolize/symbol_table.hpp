// Function symbols of one module, sorted once for address -> name lookups by binary search
// (~0.1-0.4 us, against ~130 us for elfutils dwfl_module_addrname on libc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

typedef struct Elf Elf;
typedef struct Elf_Scn Elf_Scn;

namespace memsight::symbolize {

class SymbolTable {
 public:
  // Adds the function symbols (STT_FUNC, STT_GNU_IFUNC) of .symtab and .dynsym; bad entries are skipped.
  // Names point into `elf`'s string tables: `elf` must outlive this table.
  void add(Elf* elf);
  // Sorts, merges aliases (one name per address) and bounds unsized symbols; call after the last add().
  void finish();
  // The raw (possibly mangled) name of the function covering ELF virtual address `vaddr`, or nullptr.
  const char* find(uint64_t vaddr) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    uint64_t start = 0;    // ELF virtual address
    uint64_t end = 0;      // one past the last byte; unsized symbols end at the next one or their section
    const char* name = nullptr;
    uint8_t binding = 0;   // 2 global, 1 weak, 0 local: which alias names the address
    bool hidden = false;   // a non-default symbol version ("cfree@GLIBC_2.2.5")
    bool sized = false;    // st_size was given
  };
  static bool better_name(const Entry& a, const Entry& b);
  void add_section(Elf* elf, Elf_Scn* symbols, Elf_Scn* versions,
                   const std::vector<std::pair<uint64_t, uint64_t>>& section_ranges);

  std::vector<Entry> entries_;
};

}  // namespace memsight::symbolize
