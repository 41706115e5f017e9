// One open ELF file: the descriptor and libelf's handle, owned together.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <tl/expected.hpp>

typedef struct Elf Elf;

namespace memsight::symbolize {

// A PT_LOAD program header: file bytes [offset, offset + file_size) are mapped at vaddr.
struct LoadSegment {
  uint64_t offset = 0;     // bytes into the file
  uint64_t file_size = 0;  // bytes
  uint64_t vaddr = 0;      // ELF virtual address (before any load bias)
  bool executable = false;
};

class ElfFile {
 public:
  // Takes ownership of `fd` (closed on failure too). The descriptor stays open for the life of the
  // object: libelf reads sections from it on demand (ELF_C_READ, no mmap, so a file truncated
  // under us gives read errors instead of SIGBUS). `name` is only used in error messages.
  static tl::expected<ElfFile, std::string> from_fd(int fd, const std::string& name);
  static tl::expected<ElfFile, std::string> open(const std::string& path);

  ElfFile(ElfFile&& other) noexcept;
  ElfFile& operator=(ElfFile&& other) noexcept;
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;
  ~ElfFile();

  Elf* elf() const { return elf_; }
  // The GNU build-id note as lower-case hex, if the file has one.
  std::optional<std::string> build_id() const;
  // The PT_LOAD segments; empty when the program headers are missing or unreadable.
  std::vector<LoadSegment> load_segments() const;
  // True when the file has a section of that name (e.g. ".debug_info").
  bool has_section(const char* name) const;

 private:
  ElfFile(int fd, Elf* elf) : fd_(fd), elf_(elf) {}
  void reset() noexcept;

  int fd_ = -1;
  Elf* elf_ = nullptr;
};

// Why libdw must not read the DWARF of `elf`, or nullopt when it may. libdw (elfutils 0.188, Debian 12)
// returns names and file names from .debug_str and .debug_line_str as pointers into the section and
// reads them up to a NUL: in a section whose last byte is not NUL, the last string runs past its end
// (found by tests/fuzz/elf_fuzz.cpp: tests/fuzz/regressions/elf/). Compressed string sections are
// decompressed in place first, as libdw would (it accepts sections already decompressed). Symbol and section names need no such check: libelf's elf_strptr refuses a name with
// no NUL before its section's end.
std::optional<std::string> unsafe_for_libdw(Elf* elf);

}  // namespace memsight::symbolize
