// One ELF file mapped by traced processes: file offset -> function, source line, inlined calls.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <tl/expected.hpp>

#include "core/frame.hpp"
#include "dwarf_frames.hpp"
#include "elf_file.hpp"
#include "symbol_table.hpp"

namespace memsight::symbolize {

class ElfModule {
 public:
  // `file` stays open for the life of the module, so names can be read after the process that
  // mapped it exits. When it carries no DWARF, DIR/.build-id/xx/yyyy.debug is tried under each of
  // `debug_dirs` (how distributions ship debug info). Fails only when `file` has no PT_LOAD segment.
  static tl::expected<std::unique_ptr<ElfModule>, std::string> create(ElfFile file,
                                                                      std::vector<std::string> debug_dirs);
  ElfModule(const ElfModule&) = delete;
  ElfModule& operator=(const ElfModule&) = delete;

  const std::optional<std::string>& build_id() const { return build_id_; }
  // The file's ELF handle (call-frame tables are built from it), valid for the life of the module.
  Elf* elf() const { return file_.elf(); }

  // The ELF virtual address that file byte `file_offset` is loaded as (through the PT_LOAD headers),
  // independent of where the process put the module.
  std::optional<uint64_t> vaddr_of_offset(uint64_t file_offset) const;

  // The frames of the instruction at `file_offset`, innermost first (see DwarfFrames::frames_at);
  // without DWARF, one frame named from the symbol table. Only function/file/line/inlined are set.
  // Empty when nothing is known. The symbol table and DWARF are loaded on the first call (once);
  // each offset is computed once and then answered from a cache.
  const std::vector<core::Frame>& frames_at_offset(uint64_t file_offset);

  // Loads symbols and DWARF now (otherwise the first frames_at_offset does). Returns the symbol count.
  size_t load();
  bool has_dwarf() const { return dwarf_ != nullptr && dwarf_->available(); }
  // Why the file's DWARF is not used (see DwarfFrames::refusal), once loaded; null when it is, or
  // when there is none.
  const std::string* dwarf_refusal() const {
    return dwarf_ != nullptr && dwarf_->refusal() ? &*dwarf_->refusal() : nullptr;
  }

 private:
  ElfModule(ElfFile file, std::vector<std::string> debug_dirs);
  std::vector<core::Frame> compute_frames(uint64_t file_offset);
  std::optional<ElfFile> open_debug_file() const;

  ElfFile file_;
  std::vector<std::string> debug_dirs_;
  std::optional<std::string> build_id_;
  std::vector<LoadSegment> segments_;
  bool loaded_ = false;
  // Declared after the files whose string tables and DWARF they read, so they are destroyed first.
  std::optional<ElfFile> debug_file_;
  SymbolTable symbols_;
  std::unique_ptr<DwarfFrames> dwarf_;
  std::unordered_map<uint64_t, std::vector<core::Frame>> cache_;  // file offset -> frames
  NameCache symbol_names_;  // symbol name (in the string table) -> demangled
};

}  // namespace memsight::symbolize
