// One frame of a call stack as reports show it. Unknown values stay empty (JSON null), never invented.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace memsight::core {

struct Frame {
  uint64_t address = 0;                 // user virtual address in the process that made the call
  std::optional<std::string> function;  // demangled name
  std::optional<std::string> module;    // path of the file mapped at the address, as the process sees it
  std::optional<std::string> file;      // source file (DWARF)
  std::optional<uint32_t> line;         // source line (DWARF)
  bool inlined = false;                 // an inlined call site, expanded from the frame that follows it
};

}  // namespace memsight::core
