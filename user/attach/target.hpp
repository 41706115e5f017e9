// Target discovery: which process, and which file holds the allocator its malloc calls land in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attach/elf_symbols.hpp"
#include "core/error.hpp"

namespace memsight::attach {

struct AllocatorModule {
  std::string path;       // as the target sees it (its maps); for messages
  std::string open_path;  // where memsight opens it: through /proc/PID/root for a live process
  ElfFacts facts;         // entry offsets of the allocator functions it defines
};

struct Target {
  uint32_t pid = 0;
  std::string comm;
  AllocatorModule allocator;
};

// Every symbol memsight probes, in the order of the probe table.
const std::vector<std::string>& allocator_symbols();

// A running process: exists, has user memory, and maps an allocator memsight can probe
// (glibc's libc.so.6, or an executable that defines malloc and free itself).
Result<Target> find_target(uint32_t pid);

// The allocator a command will use once it runs: the executable itself when it is static and defines
// malloc, else the libc that memsight itself runs with (the loader maps the same file).
Result<AllocatorModule> allocator_for_command(const std::string& executable);

// The executable execvp would run for `name` (searching PATH when it has no slash).
Result<std::string> resolve_command(const std::string& name);

}  // namespace memsight::attach
