// Target discovery: which process, and which of the files it maps play a role memsight probes: the
// allocator(s) its malloc and operator new land in, the C++ unwinder, the dynamic loader.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attach/elf_symbols.hpp"
#include "attach/probe_table.hpp"
#include "core/error.hpp"
#include "symbolize/root_path.hpp"

namespace memsight::attach {

// One role of one file in a process. A file may play several (jemalloc: malloc, and new/delete).
struct AllocatorModule {
  Role role = Role::kMalloc;
  std::string allocator;  // "glibc", "jemalloc", ... (known_allocators.hpp), else the file's name
  std::string prefix;     // the symbol prefix of its C API: "" or "je_", "tc_", ...
  std::string path;       // as the target sees it (its maps); for messages
  std::string open_path;  // where memsight opens it: for a live process /proc/self/fd/N of `file`
  ElfFacts facts;         // entry offsets of the functions it defines
  uint64_t dev = 0;       // the file's identity (fstat of what memsight opened): probes are attached
  uint64_t ino = 0;       // once per file and role, whatever path leads to it
  // A live process's file, opened inside its root (symbolize/root_path.hpp); open_path names it while
  // the module is kept. Empty for memsight's own files.
  std::shared_ptr<const symbolize::UniqueFd> file;
};

struct Target {
  uint32_t pid = 0;
  std::string comm;
  std::vector<AllocatorModule> modules;  // the malloc ones first
  std::vector<std::string> notes;        // for the user: a thread id was given, an unknown allocator
};

// A running process: exists, has user memory, and maps an allocator memsight can probe (a file that
// exports malloc and free, maybe with a known prefix: glibc, jemalloc, tcmalloc, mimalloc, a static
// executable). Files are opened inside the process's root, so a container's own libc is the one probed.
Result<Target> find_target(uint32_t pid);

// The modules a command will use once it runs: the executable itself when it is static and defines
// malloc, else the libc, libstdc++ and libgcc_s that memsight itself runs with (the loader maps the same
// files), and the command's loader, whose rendezvous brings the libraries mapped after exec (an
// LD_PRELOAD allocator) before the program runs.
Result<std::vector<AllocatorModule>> modules_for_command(const std::string& executable);

// Where a code address of process `pid` lies: the file mapped there (opened inside its root) and the
// file offset, as a uprobe wants it.
struct CodeLocation {
  std::string path;       // as the process sees it
  std::string open_path;  // /proc/self/fd/N of `file`
  uint64_t offset = 0;
  uint64_t dev = 0, ino = 0;  // the file's identity
  std::shared_ptr<const symbolize::UniqueFd> file;
};
Result<CodeLocation> locate_code(uint32_t pid, uint64_t address);

// The executable execvp would run for `name` (searching PATH when it has no slash).
Result<std::string> resolve_command(const std::string& name);

}  // namespace memsight::attach
