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

}  // namespace memsight::symbolize
