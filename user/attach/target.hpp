// Target discovery: which process, and which file holds the allocator its malloc calls land in.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attach/elf_symbols.hpp"
#include "core/error.hpp"
#include "symbolize/root_path.hpp"

namespace memsight::attach {

// The libraries whose entry points memsight probes.
enum class Library {
  kLibc,       // malloc, free, mmap, ...: glibc's libc.so.6, or a static executable that defines them
  kLibstdcxx,  // operator new and its variants: libstdc++.so.6 (optional)
};

struct AllocatorModule {
  Library library = Library::kLibc;
  std::string path;       // as the target sees it (its maps); for messages
  std::string open_path;  // where memsight opens it: for a live process /proc/self/fd/N of `file`
  ElfFacts facts;         // entry offsets of the allocator functions it defines
  // A live process's file, opened inside its root (symbolize/root_path.hpp); open_path names it while
  // the module is kept. Empty for memsight's own files.
  std::shared_ptr<const symbolize::UniqueFd> file;
};

struct Target {
  uint32_t pid = 0;
  std::string comm;
  std::vector<AllocatorModule> modules;  // the libc one first; libstdc++ when the process maps it
  std::optional<std::string> note;       // something the user should know (a thread id was given)
};

// The symbols memsight probes in a library of that kind.
const std::vector<std::string>& probed_symbols(Library library);

// A running process: exists, has user memory, and maps an allocator memsight can probe
// (glibc's libc.so.6, or an executable that defines malloc and free itself).
Result<Target> find_target(uint32_t pid);

// The modules a command will use once it runs: the executable itself when it is static and defines
// malloc, else the libc (and libstdc++) that memsight itself runs with: the loader maps the same files.
Result<std::vector<AllocatorModule>> modules_for_command(const std::string& executable);

// The executable execvp would run for `name` (searching PATH when it has no slash).
Result<std::string> resolve_command(const std::string& name);

}  // namespace memsight::attach
