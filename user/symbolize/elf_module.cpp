#include "elf_module.hpp"

#include <utility>

#include <fmt/format.h>

#include "demangle.hpp"

namespace memsight::symbolize {

ElfModule::ElfModule(ElfFile file, std::vector<std::string> debug_dirs)
    : file_(std::move(file)), debug_dirs_(std::move(debug_dirs)) {
  build_id_ = file_.build_id();
  segments_ = file_.load_segments();
}

tl::expected<std::unique_ptr<ElfModule>, std::string> ElfModule::create(ElfFile file,
                                                                      std::vector<std::string> debug_dirs) {
  std::unique_ptr<ElfModule> module(new ElfModule(std::move(file), std::move(debug_dirs)));
  if (module->segments_.empty()) {
    return tl::unexpected(std::string("no loadable segments (PT_LOAD): not an executable or shared library"));
  }
  return module;
}

std::optional<uint64_t> ElfModule::vaddr_of_offset(uint64_t file_offset) const {
  std::optional<uint64_t> found;
  for (const LoadSegment& s : segments_) {
    if (file_offset < s.offset || file_offset - s.offset >= s.file_size) continue;
    uint64_t vaddr = s.vaddr + (file_offset - s.offset);
    if (s.executable) return vaddr;
    if (!found) found = vaddr;
  }
  return found;
}

std::optional<ElfFile> ElfModule::open_debug_file() const {
  if (!build_id_ || build_id_->size() < 3) return std::nullopt;
  for (const std::string& dir : debug_dirs_) {
    std::string path =
        fmt::format("{}/.build-id/{}/{}.debug", dir, build_id_->substr(0, 2), build_id_->substr(2));
    auto debug = ElfFile::open(path);
    if (debug && debug->build_id() == build_id_) return std::move(*debug);
  }
  return std::nullopt;
}

size_t ElfModule::load() {
  if (loaded_) return symbols_.size();
  loaded_ = true;
  symbols_.add(file_.elf());
  Elf* dwarf_source = file_.elf();
  if (!file_.has_section(".debug_info") && !file_.has_section(".zdebug_info")) {
    debug_file_ = open_debug_file();
    if (debug_file_) {
      symbols_.add(debug_file_->elf());  // debug files keep the full .symtab that was stripped
      dwarf_source = debug_file_->elf();
    }
  }
  symbols_.finish();
  dwarf_ = std::make_unique<DwarfFrames>(dwarf_source);
  return symbols_.size();
}

std::vector<core::Frame> ElfModule::compute_frames(uint64_t file_offset) {
  std::optional<uint64_t> vaddr = vaddr_of_offset(file_offset);
  if (!vaddr) return {};
  std::vector<core::Frame> frames = dwarf_->frames_at(*vaddr);
  const char* symbol = symbols_.find(*vaddr);
  if (frames.empty()) {
    if (symbol == nullptr) return frames;
    frames.emplace_back();
  }
  // The outer frame is the real function: named from the symbol table when it can be, like modules
  // without DWARF, and with the alias people call ("malloc", where DWARF says "__libc_malloc").
  core::Frame& outer = frames.back();
  if (symbol != nullptr) {
    auto name = symbol_names_.find(symbol);
    if (name == symbol_names_.end()) name = symbol_names_.emplace(symbol, demangle(symbol)).first;
    outer.function = name->second;
  }
  return frames;
}

const std::vector<core::Frame>& ElfModule::frames_at_offset(uint64_t file_offset) {
  auto it = cache_.find(file_offset);
  if (it != cache_.end()) return it->second;
  load();
  return cache_.emplace(file_offset, compute_frames(file_offset)).first->second;
}

}  // namespace memsight::symbolize
