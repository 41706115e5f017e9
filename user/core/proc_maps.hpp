// /proc/PID/maps text: which file (device, inode, offset) backs each range of a process's address
// space. Parsing only (pure); reading the file is the caller's.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace memsight::core {

struct Mapping {
  uint64_t start = 0;        // first byte of the range (user virtual address)
  uint64_t end = 0;          // one past the last byte
  std::string perms;         // "r-xp": read, write, execute, private (p) or shared (s)
  uint64_t offset = 0;       // file offset (bytes) mapped at `start`
  uint32_t dev_major = 0;    // device of the file, as the kernel shows it (hex in the text)
  uint32_t dev_minor = 0;
  uint64_t inode = 0;        // 0: not backed by a file (anonymous, [heap], [stack], [vdso], ...)
  std::string path;          // as the process sees it; empty when anonymous; " (deleted)" removed
  bool deleted = false;      // the file was unlinked after it was mapped

  bool contains(uint64_t address) const { return start <= address && address < end; }
  bool file_backed() const { return inode != 0 && !path.empty() && path.front() == '/'; }
  // The path as the maps file showed it (" (deleted)" put back): what reports show.
  std::string display_path() const { return deleted ? path + " (deleted)" : path; }
};

struct ParsedMaps {
  std::vector<Mapping> mappings;  // sorted by start
  uint32_t skipped_lines = 0;     // lines that were not a mapping (malformed or garbage)

  // The mapping that holds `address`, or nullptr.
  const Mapping* find(uint64_t address) const;
};

// Parses the text of a maps file. Never fails: lines that do not parse are skipped and counted.
ParsedMaps parse_maps(std::string_view text);

}  // namespace memsight::core
