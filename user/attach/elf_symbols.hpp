// Finding allocator entry points in an ELF file by name, as file offsets for uprobes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace memsight::attach {

struct ElfFacts {
  bool dynamic = false;                       // has PT_INTERP: the loader maps shared libraries
  std::string interpreter;                    // that PT_INTERP path (the loader), when dynamic
  std::map<std::string, uint64_t> functions;  // wanted name -> file offset of its entry
  std::map<std::string, uint64_t> sizes;      // wanted name -> bytes of its code (st_size; 0 unknown)
  std::map<std::string, uint64_t> addresses;  // wanted name -> its link-time address (st_value), functions
                                              // and data objects both
};

// Reads `path` and returns the file offsets of those of `names` it defines as functions (in .dynsym,
// or .symtab for static binaries). Names it does not define are absent from the map.
Result<ElfFacts> read_elf_facts(const std::string& path, const std::vector<std::string>& names);

}  // namespace memsight::attach
