// ELF files (any file a traced process maps: a container's libraries are the container's) through the
// symbolizer's front end: ElfFile (build-id, program headers, sections), then ElfModule (symbol table,
// DWARF lines and inline frames) asked for the frames at a few file offsets. The input is the file; it is
// handed over as a descriptor, as the symbolizer opens /proc/PID/map_files entries.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_input.hpp"
#include "symbolize/elf_file.hpp"
#include "symbolize/elf_module.hpp"

using namespace memsight;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto file = symbolize::ElfFile::from_fd(fuzz::memory_file(data, size), "fuzz input");
  if (!file) return 0;
  (void)file->build_id();
  (void)file->has_section(".debug_info");
  const std::vector<symbolize::LoadSegment> segments = file->load_segments();
  // Offsets in and around each loaded segment, where the symbolizer's addresses fall, and a few others.
  std::vector<uint64_t> offsets = {0, 1, size / 2, size, ~uint64_t{0}};
  for (const auto& s : segments) {
    offsets.push_back(s.offset);
    offsets.push_back(s.offset + s.file_size / 2);
    offsets.push_back(s.offset + s.file_size - 1);
    offsets.push_back(s.offset + s.file_size);
  }
  // A debug directory that does not exist: the separate-debug-file path is taken and finds nothing.
  auto module = symbolize::ElfModule::create(std::move(*file), {fuzz::scratch_dir() + "/no-debug"});
  if (!module) return 0;
  (void)(*module)->load();
  (void)(*module)->has_dwarf();
  for (uint64_t offset : offsets) {
    (void)(*module)->vaddr_of_offset(offset);
    for (const auto& frame : (*module)->frames_at_offset(offset)) (void)frame.function;
  }
  return 0;
}
